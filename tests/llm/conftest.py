from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_price_cache():
    """Prices are cached per process for half a minute; each test sets its own."""
    from agents.llm import budgets

    budgets._prices.clear()
    yield
    budgets._prices.clear()


@pytest.fixture(autouse=True)
def _fresh_model_lookups():
    """Intent centroids are cached per process; each test has its own."""
    from agents.llm import intents

    intents._workspace_models.clear()
    yield
    intents._workspace_models.clear()
