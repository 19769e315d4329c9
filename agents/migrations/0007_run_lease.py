# Runs move onto the one lease (aios_site/core/lease.py): the fencing token, the lease's
# expiry and the claims counted in the row replace the claim token and the heartbeat.

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Now


def _stale() -> timedelta:
    return timedelta(seconds=settings.AIOS_RUN_STALE_SECONDS)


def claims_to_leases(apps, schema_editor):
    """A running run is held under a lease, with the first token, until the time its
    heartbeat would have gone stale: a worker that is gone by now (workers stop for a
    migration) lets it run out, and the sweep sends the run again. Other runs hold none."""
    Run = apps.get_model("agents", "Run")
    running = Run.objects.filter(status="running")
    running.filter(heartbeat_at__isnull=False).update(
        lease_token=1, lease_attempts=1, lease_expires_at=F("heartbeat_at") + _stale()
    )
    running.filter(heartbeat_at__isnull=True).update(
        lease_token=1, lease_attempts=1, lease_expires_at=Now()
    )


def leases_to_claims(apps, schema_editor):
    Run = apps.get_model("agents", "Run")
    for run in Run.objects.filter(lease_expires_at__isnull=False):
        run.claim_token = uuid.uuid4()
        run.heartbeat_at = run.lease_expires_at - _stale()
        run.save(update_fields=["claim_token", "heartbeat_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0006_costentry_estimated_note_budgetreservation"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="lease_attempts",
            field=models.PositiveIntegerField(default=0, help_text="Claims so far."),
        ),
        migrations.AddField(
            model_name="run",
            name="lease_expires_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Until when the current holder has it; empty: free.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="lease_token",
            field=models.BigIntegerField(
                blank=True, help_text="Fencing token of the latest claim.", null=True
            ),
        ),
        migrations.RunPython(claims_to_leases, leases_to_claims),
        migrations.RemoveIndex(
            model_name="run",
            name="agents_run_status_55a4af_idx",
        ),
        migrations.RemoveField(
            model_name="run",
            name="claim_token",
        ),
        migrations.RemoveField(
            model_name="run",
            name="heartbeat_at",
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                fields=["status", "lease_expires_at"], name="agents_run_status_a9abde_idx"
            ),
        ),
    ]
