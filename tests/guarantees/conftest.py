"""The guarantees' tests reuse the catalog's fixtures: a connected store and intent examples."""

from __future__ import annotations

from tests.catalog.conftest import store  # noqa: F401 - a fixture
from tests.catalog.test_pipelines import intents  # noqa: F401 - a fixture
