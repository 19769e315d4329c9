"""The database roles AIOS runs with, so that the application cannot rewrite its own audit.

- `aios` logs in: the application, its workers and its migrations. No superuser; it owns
  every table but one, and may create databases (the test runner's own).
- `aios_app` (no login): what the application's login is a member of. On the audit table it
  may only read and append.
- `aios_audit_owner` (no login, nobody a member): owns the audit table and its append-only
  trigger. Only an owner or a superuser may disable or drop a trigger, delete, update or
  truncate, so the application's role cannot, even by SQL of its own.

Roles belong to the whole cluster: creating them and handing the audit table over needs a
superuser. The embedded PostgreSQL's setup does both (`provision`, then `hand_over_audit`
after migrating); against a database of your own, a DBA calls the same two functions
(README.md, Production).
"""

from __future__ import annotations

from typing import Any

LOGIN = "aios"
APP_ROLE = "aios_app"
AUDIT_OWNER = "aios_audit_owner"
AUDIT_TABLE = "approvals_auditentry"

ROLES = f"""
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{AUDIT_OWNER}') THEN
        CREATE ROLE {AUDIT_OWNER} NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} NOLOGIN;
    END IF;
"""  # noqa: S608 - the names are this module's constants

# The statements of the handover, valid inside a PL/pgSQL block (migration 0007 runs them
# when it is run by a superuser, `hand_over_audit` afterwards when it was not).
HANDOVER = f"""
    ALTER TABLE {AUDIT_TABLE} OWNER TO {AUDIT_OWNER};
    ALTER FUNCTION approvals_audit_append_only() OWNER TO {AUDIT_OWNER};
    REVOKE ALL ON {AUDIT_TABLE} FROM PUBLIC;
    GRANT SELECT, INSERT ON {AUDIT_TABLE} TO {APP_ROLE};
    GRANT USAGE ON SEQUENCE {AUDIT_TABLE}_id_seq TO {APP_ROLE};
"""

LOGIN_ROLE = f"""
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{LOGIN}') THEN
        CREATE ROLE {LOGIN} LOGIN;
    END IF;
    ALTER ROLE {LOGIN} LOGIN CREATEDB NOSUPERUSER NOCREATEROLE;
    GRANT {APP_ROLE} TO {LOGIN};
"""

# A data directory made before the application had a login of its own holds tables owned
# by the superuser: the login adopts them (all but the audit table and its trigger function).
ADOPT = f"""
DO $$
DECLARE item record;
BEGIN
    FOR item IN
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
          AND pg_get_userbyid(c.relowner) NOT IN ('{LOGIN}', '{AUDIT_OWNER}')
          AND c.relname <> '{AUDIT_TABLE}'
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
    LOOP
        EXECUTE format(
            'ALTER %s %I OWNER TO {LOGIN}',
            CASE item.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                 WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
            item.relname);
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure AS signature FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'
          AND pg_get_userbyid(p.proowner) NOT IN ('{LOGIN}', '{AUDIT_OWNER}')
          AND p.proname <> 'approvals_audit_append_only'
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO {LOGIN}', item.signature);
    END LOOP;
END
$$;
"""  # noqa: S608 - the names are this module's constants


def provision(admin_uri: str, database: str) -> None:
    """As a superuser: the roles, pgvector in template1 (so databases the login creates, the
    test runner's included, have it), and `database` owned by the login, with pgvector."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_uri, autocommit=True) as admin:
        admin.execute(f"DO $$ BEGIN {ROLES} {LOGIN_ROLE} END $$")
        owner = admin.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        name = sql.Identifier(database)
        if owner is None:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(name, sql.Identifier(LOGIN))
            )
        elif owner[0] != LOGIN:
            admin.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(name, sql.Identifier(LOGIN))
            )
    for dbname in ("template1", database):
        with psycopg.connect(admin_uri, dbname=dbname, autocommit=True) as admin:
            admin.execute("CREATE EXTENSION IF NOT EXISTS vector")
            if dbname == database:
                admin.execute(ADOPT)


def hand_over_audit(admin_uri: str, database: str, *, truncatable_by: str | None = None) -> bool:
    """As a superuser, once the migrations ran: the audit table to its own owner, read and
    append for the application. `truncatable_by` is for a test database only, whose runner
    empties every table between tests. False when the table is not there yet."""
    import psycopg

    with psycopg.connect(admin_uri, dbname=database, autocommit=True) as admin:
        if not _audit_table_exists(admin):
            return False
        admin.execute(f"DO $$ BEGIN {ROLES} {HANDOVER} END $$")
        if truncatable_by:
            admin.execute(f'GRANT TRUNCATE ON {AUDIT_TABLE} TO "{truncatable_by}"')
    return True


def _audit_table_exists(admin: Any) -> bool:
    return admin.execute("SELECT to_regclass(%s) IS NOT NULL", [AUDIT_TABLE]).fetchone()[0]
