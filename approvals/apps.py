from __future__ import annotations

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self) -> None:
        from aios_site.core.signals import run_finished
        from approvals import effectors  # noqa: F401  (registers the core effectors)

        run_finished.connect(_withdraw_if_cancelled, dispatch_uid="approvals.withdraw")


def _withdraw_if_cancelled(sender, run, **_) -> None:
    """A cancelled run's pending proposals can no longer be approved."""
    if run.status == "cancelled":
        from approvals.services import proposals_withdraw

        proposals_withdraw(run_id=run.pk)
