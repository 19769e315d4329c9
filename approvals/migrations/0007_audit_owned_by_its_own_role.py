from __future__ import annotations

from django.db import migrations

from aios_site.dbroles import HANDOVER, ROLES

# The audit table belongs to a role nobody logs in as (`aios_audit_owner`); the application's
# login is a member of `aios_app`, which may only read and append (aios_site/dbroles.py).
# Roles are the cluster's, so this needs a superuser; run by the application's own login, it
# changes nothing and says so, and the embedded setup (or a DBA) hands the table over after
# migrating (`dbroles.hand_over_audit`).
OWN = f"""
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'aios: % is no superuser: the audit table is handed over later',
            current_user;
        RETURN;
    END IF;
    {ROLES}
    {HANDOVER}
END
$$;
"""  # noqa: S608 - constants of aios_site/dbroles.py

DISOWN = """
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('ALTER TABLE approvals_auditentry OWNER TO %I', current_user);
        EXECUTE format('ALTER FUNCTION approvals_audit_append_only() OWNER TO %I', current_user);
    END IF;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("approvals", "0006_audit_subject_keys")]

    operations = [migrations.RunSQL(OWN, DISOWN)]
