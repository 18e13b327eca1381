"""Live checks of plan 9.1 and 9.2: who may connect, and what each account may do, by trying."""

from __future__ import annotations

import os

import psycopg

from conformance.live.context import SQL_FILES
from conformance.live.statements import WRITE_PATH
from conformance.plan import SCHEMA_TABLES as EXPECTED_TABLES, SCHEMA_VIEWS as EXPECTED_VIEWS, figure
from conformance.registry import Skip, live

STS_FILE = "postgresql-product-change-statefulset.yaml"
SCHEMA = figure("schema").expected

def _attempt(conn, sql: str) -> str | None:
    """None when the statement worked, else the error's first line; the transaction stays usable."""
    conn.execute("SAVEPOINT attempt")
    try:
        conn.execute(sql)
        conn.execute("RELEASE SAVEPOINT attempt")
        return None
    except psycopg.Error as exc:
        conn.execute("ROLLBACK TO SAVEPOINT attempt")
        return str(exc).splitlines()[0]



_FORBIDDEN = {
    "DELETE": f"DELETE FROM {SCHEMA}.pc_kos_integration_log",
    "TRUNCATE": f"TRUNCATE {SCHEMA}.pc_kos_integration_log",
    "CREATE TABLE": f"CREATE TABLE {SCHEMA}.intruder (id int)",
    "CREATE TABLE in public": "CREATE TABLE public.intruder (id int)",
    "DROP TABLE": f"DROP TABLE {SCHEMA}.pc_kos_integration_log",
    "DROP VIEW": f"DROP VIEW {SCHEMA}.v_circuit_breaker_status",
}


@live("live-9.2-app-privileges", "9.2", "the app account runs the service's write path and can do nothing more",
      checklist=("14.1-db-connection",))
def app_privileges(ctx):
    with ctx.rolled_back("app") as conn:
        for sql in WRITE_PATH:
            error = _attempt(conn, sql)
            if error:
                yield ctx.finding(SQL_FILES["privileges"], "role product_change_app", sql.split(" (")[0][:60], "allowed", error)
        for what, sql in _FORBIDDEN.items():
            if _attempt(conn, sql) is None:
                yield ctx.finding(SQL_FILES["privileges"], "role product_change_app", what, "refused", "allowed")
        if conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            yield ctx.finding(SQL_FILES["roles"], "role product_change_app", "rolsuper", False, True)


@live("live-9.2-readonly-privileges", "9.2", "the read-only account reads tables and views and writes nothing")
def readonly_privileges(ctx):
    with ctx.rolled_back("readonly") as conn:
        for table in EXPECTED_TABLES + EXPECTED_VIEWS:
            error = _attempt(conn, f"SELECT * FROM {SCHEMA}.{table} LIMIT 1")
            if error:
                yield ctx.finding(SQL_FILES["privileges"], "role product_change_readonly", f"SELECT {table}", "allowed", error)
        writes = {"INSERT": WRITE_PATH[0], "UPDATE": WRITE_PATH[4], **_FORBIDDEN}
        for what, sql in writes.items():
            if _attempt(conn, sql) is None:
                yield ctx.finding(SQL_FILES["privileges"], "role product_change_readonly", what, "refused", "allowed")


@live("live-9.2-admin-owns", "9.2", "the admin owns the schema and every object in it")
def admin_owns(ctx):
    admin = figure("account-admin").expected
    rows = ctx.query(
        "SELECT 'schema', nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s "
        "UNION ALL SELECT c.relkind::text, c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind <> 'i' "
        "UNION ALL SELECT 'function', p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s", (SCHEMA, SCHEMA, SCHEMA))
    for kind, name, owner in rows:
        if owner != admin:
            yield ctx.finding(SQL_FILES["schema"], f"{kind} {name}", "owner", admin, owner)
    with ctx.rolled_back("admin") as conn:
        error = _attempt(conn, f"CREATE TABLE {SCHEMA}.admin_probe (id int); DROP TABLE {SCHEMA}.admin_probe")
        if error:
            yield ctx.finding(SQL_FILES["privileges"], "role product_change_admin", "CREATE/DROP", "allowed", error)


@live("live-9.1-connect-only-accounts", "9.1", "no other role can connect; a wrong password is refused",
      checklist=("14.1-db-connection",))
def connect_only_accounts(ctx):
    if not ctx.allow_writes:
        raise Skip("creating a probe role needs --allow-writes")
    probe_password = os.urandom(12).hex()
    with ctx.connect(autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS pc_conformance_intruder")
        conn.execute(f"CREATE ROLE pc_conformance_intruder LOGIN PASSWORD '{probe_password}'")
    try:
        info = ctx.target.conninfo("app")
        info.update(user="pc_conformance_intruder", password=probe_password)
        try:
            psycopg.connect(**info).close()
            yield ctx.finding(SQL_FILES["roles"], "database product_change_db", "CONNECT for other roles",
                              "refused (REVOKE ALL ON DATABASE FROM PUBLIC)", "a new role connected")
        except psycopg.OperationalError:
            pass
    finally:
        with ctx.connect(autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS pc_conformance_intruder")
    for role in ("app", "admin", "readonly"):
        try:
            ctx.connect(role, password="wrong-" + probe_password).close()
            yield ctx.finding(STS_FILE, f"role {ctx.target.account(role).user}", "wrong password", "refused", "accepted")
        except psycopg.OperationalError:
            pass


