from __future__ import annotations

from django.db import migrations

# The audit table belongs to a role nobody logs in as (`aios_audit_owner`); the application's
# runtime role is meant to be a member of `aios_app`, which may only read and append. Only
# an owner (or a superuser) can disable or drop a table's trigger, and without UPDATE,
# DELETE or TRUNCATE the append-only rule does not even depend on the trigger. Roles are
# the cluster's, so this needs a superuser; run by anyone else it changes nothing and says
# so (a DBA then runs the same statements).
OWN = """
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE WARNING 'aios: % is not a superuser; the audit table stays owned by it', current_user;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aios_audit_owner') THEN
        CREATE ROLE aios_audit_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aios_app') THEN
        CREATE ROLE aios_app NOLOGIN;
    END IF;
    ALTER TABLE approvals_auditentry OWNER TO aios_audit_owner;
    ALTER FUNCTION approvals_audit_append_only() OWNER TO aios_audit_owner;
    REVOKE ALL ON approvals_auditentry FROM PUBLIC;
    GRANT SELECT, INSERT ON approvals_auditentry TO aios_app;
    GRANT USAGE ON SEQUENCE approvals_auditentry_id_seq TO aios_app;
END
$$;
"""

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
