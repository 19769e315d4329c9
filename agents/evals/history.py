"""A dataset from a workspace's own history: its decided reply cards, labelled by what a person
did with them, so a new model or prompt can be tried on last month's messages first.

- approved as the agent wrote it: the intent stands, and a reply like it may go out alone;
- approved after an edit: the intent stands, the person's text is the reply to match, and it
  may not go out alone (it needed the edit);
- rejected: it may not go out alone; the rejection's category is kept with the item.

Cards the policy decided by itself are left out: nobody judged them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

DAYS = 30
LIMIT = 500


def history_items(*, workspace_id: int, days: int = DAYS) -> list[dict[str, Any]]:
    from approvals.models import Proposal
    from catalog.models import Message

    cards = (
        Proposal.objects.filter(
            workspace_id=workspace_id,
            effector="catalog.send_reply",
            decided_by__isnull=False,
            decided_at__gte=timezone.now() - timedelta(days=days),
        )
        .exclude(status="pending")
        .order_by("-decided_at", "-pk")[:LIMIT]
    )
    cards = list(cards)
    ids = [card.proposed_payload.get("message_id") for card in cards]
    messages = Message.objects.filter(workspace_id=workspace_id, pk__in=ids).in_bulk()
    items = []
    for card in cards:
        message = messages.get(card.proposed_payload.get("message_id"))
        if message is not None:
            items.append(_item(card, message))
    return items


def _item(card, message) -> dict[str, Any]:
    rejected = card.status == "rejected"
    approved_as_is = not rejected and not card.edited
    return {
        "id": f"card-{card.pk}",
        "language": message.language or card.proposed_payload.get("language", ""),
        # A person approved the card under this intent; a rejected card's intent is unknown.
        "intent": "" if rejected else card.proposed_payload.get("intent", ""),
        "subject": message.subject,
        "body": message.body,
        "order": message.order_ref or None,
        "product": None,
        "must_contain": [],
        "must_not_contain": [],
        "risk": card.risk,
        "auto_ok": approved_as_is,
        "notes": (
            f"rejected ({card.reject_category})"
            if rejected
            else ("edited: " + card.payload.get("body", "")[:500] if card.edited else "approved")
        ),
    }
