"""Seams between the layers: a lower app announces, an upper app listens.

`run_finished` is sent by the run engine (agents) when a run reaches a final status, inside
the transaction that recorded it; governance (approvals) listens, so that agents never needs
to import approvals to have a cancelled run's pending proposals withdrawn.
"""

from __future__ import annotations

from django.dispatch import Signal

run_finished = Signal()  # sender: the Run class; run: the run, with its final status
