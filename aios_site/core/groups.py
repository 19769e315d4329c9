"""The names of the channel-layer groups live updates are sent to. The sockets
(aios_site/consumers.py) join them; the apps send to them; neither imports the other."""

from __future__ import annotations


def workspace_group(workspace_id: int) -> str:
    """Everyone watching a workspace: run rows, board cards, the live badge."""
    return f"workspace.{workspace_id}"


def member_group(workspace_id: int, user_id: int) -> str:
    """The sockets of one member of one workspace: told when that membership changes."""
    return f"member.{workspace_id}.{user_id}"


def run_group(run_id: int) -> str:
    """Everyone watching one run's page."""
    return f"run.{run_id}"
