from __future__ import annotations

import pytest

from agents.services import models as model_services
from tests.catalog.conftest import store  # noqa: F401 - a connected store, with its agents


@pytest.fixture
def shop(store, workspace):  # noqa: F811 - the fixture imported above
    """A connected store whose support agent has the shipped intent examples."""
    model_services.intent_examples_seed(workspace=workspace)
    return store


@pytest.fixture
def candidate(shop, workspace, fake_openai):
    """The tests' OpenAI-compatible server as the workspace's provider `candidate`."""
    model_services.provider_save(
        workspace=workspace,
        name="candidate",
        base_url=fake_openai.base_url,
        model_small="c-small",
        model_large="c-large",
    )
    return fake_openai


def run_eval(
    workspace, dataset: str, *, provider: str = "", limit: int | None = None, **configured
):
    """An eval of `dataset` started and run here, to the end."""
    from agents.evals import runner

    started = runner.eval_start(
        workspace=workspace,
        dataset=dataset,
        provider=provider,
        configured=runner.configuration(**configured),
        limit=limit,
    )
    return runner.eval_execute(eval_run_id=started.pk, limit=limit)
