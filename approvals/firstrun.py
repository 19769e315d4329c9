"""The first run of a workspace, as steps on its empty board: connect the store, its catalog
arrives, the first proposals come. Apps that own a step register it (catalog/apps.py), so
the board says where the workspace stands without knowing about stores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    label: str  # "Connect your store"
    done: Callable[[int], bool]  # (workspace id) -> whether the step is behind it
    url_name: str  # the page where it is done
    hint: str = ""  # what happens once it is


_STEPS: list[Step] = []


def register_step(step: Step) -> None:
    _STEPS.append(step)


def first_run(workspace_id: int) -> list[dict]:
    """The steps in order, each done or not; the first one not done is the next."""
    rows, next_found = [], False
    for step in _STEPS:
        done = step.done(workspace_id)
        rows.append({"step": step, "done": done, "next": not done and not next_found})
        next_found = next_found or not done
    return rows
