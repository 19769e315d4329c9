"""Access helpers for governance objects: scoped to the requester's workspace, else 404."""

from __future__ import annotations

from django.http import Http404

from aios_site.accounts.models import Membership
from approvals.models import Proposal


def access_proposal(*, membership: Membership, proposal_id: int) -> Proposal:
    proposal = (
        Proposal.objects.select_related("agent", "decided_by", "workspace")
        .filter(workspace_id=membership.workspace_id, pk=proposal_id)
        .first()
    )
    if proposal is None:
        raise Http404("No such proposal.")
    return proposal
