from __future__ import annotations

from django.db import migrations

# UPDATE and DELETE on the audit log are refused, unless a session says `SET LOCAL
# aios.audit_purge = 'on'` (removing a whole workspace, by an operator of the deployment).
APPEND_ONLY = """
CREATE FUNCTION approvals_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF current_setting('aios.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER approvals_audit_append_only
BEFORE UPDATE OR DELETE ON approvals_auditentry
FOR EACH ROW EXECUTE FUNCTION approvals_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS approvals_audit_append_only ON approvals_auditentry;
DROP FUNCTION IF EXISTS approvals_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("approvals", "0001_audit_log")]

    operations = [migrations.RunSQL(APPEND_ONLY, DROP)]
