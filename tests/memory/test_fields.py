"""A fact's structured fields are edited beside its text in the memory console, kept with
their version and diff — and what is edited there is what the next templated reply says."""

from __future__ import annotations

import pytest

from approvals.models import Proposal
from memory.models import MemoryItem
from memory.selectors import memory_current
from tests.agents.conftest import drive
from tests.catalog.conftest import store  # noqa: F401 - a fixture
from tests.catalog.test_pipelines import (
    _message,
    _run_of,
    intents,  # noqa: F401 - a fixture
    returns_intents,  # noqa: F401 - a fixture
    returns_policy,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.django_db


def _edit(client, item, content, **fields):
    return client.post(
        f"/w/alice/memory/items/{item.pk}/edit/",
        {"content": content, **{f"field:{name}": value for name, value in fields.items()}},
        follow=True,
    )


def test_the_console_shows_a_fact_s_fields_as_inputs_beside_its_text(
    operator_client,
    returns_policy,  # noqa: F811
):
    page = operator_client.get(f"/w/alice/memory/items/{returns_policy.pk}/").content.decode()

    assert '<label for="field-return_days">Return days</label>' in page
    assert 'name="field:return_days" value="30"' in page
    assert "<pre>{&#x27;return_days&#x27;" not in page  # no raw metadata to read


def test_a_field_edited_in_the_console_reaches_the_next_templated_reply(
    operator_client,
    store,  # noqa: F811
    workspace,
    returns_intents,  # noqa: F811
    returns_policy,  # noqa: F811
):
    answer = _edit(
        operator_client,
        returns_policy,
        "Returns within 45 days of delivery; refunds within 5 business days.",
        return_days="45",
        refund_days="5",
    )

    assert "Saved as version 2." in answer.content.decode()
    current = memory_current(workspace_id=workspace.pk, namespace="policies", key="returns")
    assert current.version == 2 and current.metadata == {"return_days": 45, "refund_days": 5}
    _message(store, "What is your return policy? Can I return a jumper?")
    proposal = Proposal.objects.get(run=drive(_run_of("support")))
    assert proposal.payload["tier"] == "template"
    assert "within 45 days of delivery" in proposal.payload["body"]
    assert "30 days" not in proposal.payload["body"]
    assert proposal.sources == ["policies/returns@2"]


def test_a_field_change_shows_in_the_version_history(operator_client, returns_policy):  # noqa: F811
    _edit(
        operator_client,
        returns_policy,
        returns_policy.content.replace("30", "45"),
        return_days="45",
    )

    page = operator_client.get(f"/w/alice/memory/items/{returns_policy.pk}/").content.decode()

    assert "Return days: <del>30</del> → <ins>45</ins>" in page


def test_the_console_warns_when_the_text_still_states_the_old_number(
    operator_client,
    returns_policy,  # noqa: F811
):
    answer = _edit(operator_client, returns_policy, returns_policy.content, return_days="45")

    assert "The text still says 30 where “return days” is now 45" in answer.content.decode()


def test_a_field_that_is_not_a_number_is_refused_and_nothing_is_saved(
    operator_client,
    returns_policy,  # noqa: F811
):
    answer = _edit(operator_client, returns_policy, returns_policy.content, return_days="forty")

    assert "Return days: &#x27;forty&#x27; is not a number" in answer.content.decode()
    assert MemoryItem.objects.filter(key="returns").count() == 1
