"""Access helpers for agents and runs: scoped to the requester's workspace, else 404."""

from __future__ import annotations

from django.http import Http404

from agents.models import Agent, Provider, Run
from aios_site.accounts.models import Membership


def access_agent(*, membership: Membership, slug: str) -> Agent:
    agent = Agent.objects.filter(workspace_id=membership.workspace_id, slug=slug).first()
    if agent is None:
        raise Http404("No such agent.")
    return agent


def access_run(*, membership: Membership, run_id: int) -> Run:
    run = (
        Run.objects.select_related("agent", "parent", "forked_from")
        .filter(workspace_id=membership.workspace_id, pk=run_id)
        .first()
    )
    if run is None:
        raise Http404("No such run.")
    return run


def access_provider(*, membership: Membership, name: str) -> Provider:
    provider = Provider.objects.filter(workspace_id=membership.workspace_id, name=name).first()
    if provider is None:
        raise Http404("No such provider.")
    return provider
