from __future__ import annotations

import pytest

from agents.services import models as model_services
from tests.catalog.conftest import store  # noqa: F401 - a connected store, with its agents


@pytest.fixture
def shop(store, workspace):  # noqa: F811 - the fixture imported above
    """A connected store whose support agent has the shipped intent examples."""
    model_services.intent_examples_seed(workspace=workspace)
    return store
