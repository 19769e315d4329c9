"""Erasing a shop's customer from everything that carried them, for `customers/redact` and
`shop/redact`: their messages and exports, the runs that answered them (input, state,
checkpoints, journal), the proposals addressed to them, and — by destroying their audit key
— what the audit log said about them. Found by the customer's email addresses, the one
thing every one of those rows was reached from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from agents.models import Checkpoint, JournalEntry, Run
from approvals.audit import audit_subject_forget, register_subject_finder
from approvals.models import Proposal, ProposalStatus
from catalog.models import Message

REDACTED = {"redacted": True}
ERASED = "the customer's data was erased at their request"


def customer_subject(connection_id: int, email: str) -> str:
    """Who an audit key belongs to: one email at one store."""
    return f"customer:{connection_id}:{email.strip().lower()}"


def customer_traces_erase(*, connection, emails: Iterable[str]) -> None:
    """Erases what AIOS derived from the customer's messages (the Customer and Order rows
    and webhook bodies are the caller's)."""
    emails = {email.strip().lower() for email in emails if email and email.strip()}
    if not emails:
        return
    by_email = Q()
    for email in emails:
        by_email |= Q(customer_email__iexact=email)
    messages = Message.objects.filter(connection=connection).filter(by_email)
    message_ids = list(messages.values_list("pk", flat=True))
    _runs_erase(connection.workspace_id, message_ids)
    for email in emails:
        audit_subject_forget(
            workspace_id=connection.workspace_id, subject=customer_subject(connection.pk, email)
        )
    messages.delete()


def _runs_erase(workspace_id: int, message_ids: list[int]) -> None:
    runs = Run.objects.filter(workspace_id=workspace_id, input__message_id__in=message_ids)
    run_ids = list(runs.values_list("pk", flat=True))
    proposals = Proposal.objects.filter(workspace_id=workspace_id).filter(
        Q(run_id__in=run_ids) | Q(payload__message_id__in=message_ids)
    )
    # A reply still waiting would go to nobody: it can no longer be approved.
    proposals.filter(status=ProposalStatus.PENDING).update(
        status=ProposalStatus.REJECTED, reason=ERASED
    )
    proposals.update(
        payload=REDACTED, proposed_payload=REDACTED, diff=[], facts={}, rationale="", sources=[]
    )
    proposals.filter(result__isnull=False).update(result=REDACTED)
    Checkpoint.objects.filter(run_id__in=run_ids).update(
        state_before=REDACTED, state_after=REDACTED, transition=None, error=""
    )
    Checkpoint.objects.filter(run_id__in=run_ids, resumed_with__isnull=False).update(
        resumed_with=REDACTED
    )
    JournalEntry.objects.filter(run_id__in=run_ids).update(
        request=REDACTED, response=REDACTED, error=""
    )
    runs.update(input=REDACTED, state=REDACTED, error="")
    runs.filter(outcome__isnull=False).update(outcome=REDACTED)


# -- which audit entries are about a customer ------------------------------------------------


def _message_id(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    for part in (value, value.get("payload"), value.get("result")):
        if isinstance(part, dict) and isinstance(part.get("message_id"), int):
            return part["message_id"]
    return None


def audit_subject(*, workspace_id: int, object_type: str, before: Any, after: Any) -> str:
    """An entry about a proposal that answers a customer's message is about that customer."""
    message_id = _message_id(after) or _message_id(before)
    if message_id is None:
        return ""
    message = (
        Message.objects.filter(workspace_id=workspace_id, pk=message_id)
        .values_list("connection_id", "customer_email")
        .first()
    )
    return customer_subject(*message) if message else ""


def register() -> None:
    register_subject_finder(audit_subject)
