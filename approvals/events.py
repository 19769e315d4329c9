"""Live board: after a proposal's change commits, the workspace's browsers get its card.

Only "proposal N changed" travels; each browser's websocket consumer renders the card from
the proposal as it is then, for that member's role. Failing to announce never fails the
change itself.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from aios_site.core.groups import workspace_group

logger = logging.getLogger(__name__)


def proposal_changed(proposal, *, created: bool = False) -> None:
    proposal_id, workspace_id = proposal.pk, proposal.workspace_id
    transaction.on_commit(lambda: _announce(proposal_id, workspace_id, created))


def _announce(proposal_id: int, workspace_id: int, created: bool) -> None:

    event = {"type": "proposal.changed", "proposal_id": proposal_id, "created": created}
    try:
        async_to_sync(get_channel_layer().group_send)(workspace_group(workspace_id), event)
    except Exception:
        logger.exception("could not announce proposal %s", proposal_id)


def render_card(proposal_id: int, *, created: bool, can_decide: bool) -> str:
    """The card, out of band: new ones go to the top of the pending tab; a changed one
    replaces itself wherever it is shown and leaves the tab it no longer belongs to."""
    from django.template.loader import render_to_string

    from approvals.selectors import board_cards, board_tabs

    cards = board_cards(proposal_ids=[proposal_id])
    if not cards:
        return ""
    from django.urls import reverse

    card = cards[0]
    context = {
        "card": card,
        "tabs": board_tabs(workspace_id=card["proposal"].workspace_id),  # their counts move
        "created": created,
        "can_decide": can_decide,
        "oob": True,
        "board_url": reverse("board", args=[card["proposal"].workspace.slug]),
    }
    return render_to_string("approvals/board.html#card-push", context)
