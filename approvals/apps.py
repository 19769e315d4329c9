from __future__ import annotations

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self) -> None:
        from agents.context import provide
        from aios_site.core.audit import audit_writer
        from aios_site.core.signals import run_finished
        from approvals import effectors  # registers the core effectors
        from approvals.audit import audit_record
        from approvals.services import proposal_evaluate, proposal_propose

        audit_writer(audit_record)
        provide("propose", proposal_propose)
        provide("evaluate", proposal_evaluate)
        provide("effector_names", effectors.effector_names)

        run_finished.connect(_withdraw_if_cancelled, dispatch_uid="approvals.withdraw")


def _withdraw_if_cancelled(sender, run, **_) -> None:
    """A cancelled run's pending proposals can no longer be approved."""
    if run.status == "cancelled":
        from approvals.services import proposals_withdraw

        proposals_withdraw(run_id=run.pk)
