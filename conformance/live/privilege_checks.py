"""Live checks of plan 9.1 and 9.2: who may connect, and what each account may do, by trying."""

from __future__ import annotations

import os


from conformance.live.context import SQL_FILES
from conformance.live.statements import WRITE_PATH
from conformance.plan import (PRIVILEGE_KINDS, PRIVILEGES, ROLE_ATTRIBUTES, ROLE_MEMBERSHIPS, ROLE_SETTINGS,
                              SCHEMA_TABLES as EXPECTED_TABLES, SCHEMA_VIEWS as EXPECTED_VIEWS, figure)
from conformance.pg import attempt
from conformance.registry import Skip, live

STS_FILE = "postgresql-product-change-statefulset.yaml"
SCHEMA = figure("schema").expected

INSUFFICIENT_PRIVILEGE = "42501"


class RefusedForAnotherReason(Exception):
    """A try meant to show a missing privilege failed for another reason: it proves nothing,
    so the check reports an error instead of a pass."""


def refused(conn, sql: str, obj: str) -> bool:
    """True when the statement was refused for want of a privilege on obj (SQLSTATE 42501,
    insufficient_privilege, naming obj); False when it worked. Any other failure raises."""
    error = attempt.statement(conn, sql)
    if error is None:
        return False
    message = error.diag.message_primary or str(error)
    # "permission denied for table X", "must be owner of view X": the object is the last word
    # (not a substring: pc_product_change_history_id_seq is not pc_product_change_history).
    if error.sqlstate == INSUFFICIENT_PRIVILEGE and message.split()[-1:] == [obj]:
        return True
    raise RefusedForAnotherReason(f"{sql[:70]!r} was meant to be refused for a privilege on {obj} "
                                  f"(SQLSTATE {INSUFFICIENT_PRIVILEGE}), but failed with {error.sqlstate}: {message}")


T = {name: f"{SCHEMA}.{name}" for name in EXPECTED_TABLES + EXPECTED_VIEWS}
# What every account but the admin must be refused: what it tries -> (SQL, the object the
# refusal must name).
_FORBIDDEN = {
    **{f"DELETE on {t}": (f"DELETE FROM {T[t]}", t) for t in EXPECTED_TABLES},
    **{f"TRUNCATE on {t}": (f"TRUNCATE {T[t]}", t) for t in EXPECTED_TABLES},
    "INSERT on v_circuit_breaker_status": (f"INSERT INTO {T['v_circuit_breaker_status']} (service_name) VALUES ('X')",
                                           "v_circuit_breaker_status"),
    "UPDATE on v_circuit_breaker_status": (f"UPDATE {T['v_circuit_breaker_status']} SET state = 'OPEN'",
                                           "v_circuit_breaker_status"),
    "UPDATE on sequence pc_kos_integration_log_id_seq": (f"SELECT setval('{SCHEMA}.pc_kos_integration_log_id_seq', 1)",
                                                         "pc_kos_integration_log_id_seq"),
    "EXECUTE cleanup_old_logs()": (f"SELECT {SCHEMA}.cleanup_old_logs()", "cleanup_old_logs"),
    "CREATE TABLE": (f"CREATE TABLE {SCHEMA}.intruder (id int)", SCHEMA),
    "CREATE TABLE in public": ("CREATE TABLE public.intruder (id int)", "public"),
    "DROP TABLE": (f"DROP TABLE {T['pc_kos_integration_log']}", "pc_kos_integration_log"),
    "DROP VIEW": (f"DROP VIEW {T['v_circuit_breaker_status']}", "v_circuit_breaker_status"),
}
# The read-only account is refused the app's writes too.
_READONLY_FORBIDDEN = {
    "INSERT on pc_product_change_history": (WRITE_PATH[0], "pc_product_change_history"),
    "UPDATE on pc_circuit_breaker_state": (WRITE_PATH[4], "pc_circuit_breaker_state"),
    "USAGE on sequence pc_kos_integration_log_id_seq": (f"SELECT nextval('{SCHEMA}.pc_kos_integration_log_id_seq')",
                                                        "pc_kos_integration_log_id_seq"),
    **_FORBIDDEN,
}


def _refusals(ctx, conn, role: str, forbidden: dict):
    for what, (sql, obj) in forbidden.items():
        if not refused(conn, sql, obj):
            yield ctx.finding(SQL_FILES["privileges"], f"role {role}", what,
                              f"refused: insufficient_privilege on {obj} (plan 9.2)", "allowed")


@live("live-9.2-app-privileges", "9.2", "the app account runs the service's write path and can do nothing more",
      checklist=("14.1-db-connection",))
def app_privileges(ctx):
    app = figure("account-app").expected
    with ctx.rolled_back("app") as conn:
        for sql in WRITE_PATH:
            error = attempt.statement(conn, sql)
            if error:
                yield ctx.finding(SQL_FILES["privileges"], f"role {app}", sql.split(" (")[0][:60], "allowed (plan 9.2)",
                                  f"{error.sqlstate}: {error.diag.message_primary}")
        yield from _refusals(ctx, conn, app, _FORBIDDEN)


@live("live-9.2-readonly-privileges", "9.2", "the read-only account reads tables and views and writes nothing")
def readonly_privileges(ctx):
    readonly = figure("account-readonly").expected
    with ctx.rolled_back("readonly") as conn:
        for table in EXPECTED_TABLES + EXPECTED_VIEWS:
            error = attempt.statement(conn, f"SELECT * FROM {SCHEMA}.{table} LIMIT 1")
            if error:
                yield ctx.finding(SQL_FILES["privileges"], f"role {readonly}", f"SELECT {table}", "allowed (plan 9.2)",
                                  f"{error.sqlstate}: {error.diag.message_primary}")
        yield from _refusals(ctx, conn, readonly, _READONLY_FORBIDDEN)


# -- the catalog, compared with plan 9.2's table exactly ------------------------------------

_HAS = """
SELECT g, k, o, p, CASE
    WHEN k IN ('table', 'view') THEN has_table_privilege(g, o, p)
    WHEN k = 'sequence' THEN has_sequence_privilege(g, o, p)
    WHEN k = 'function' THEN has_function_privilege(g, o, p)
    WHEN k = 'database' THEN has_database_privilege(g, o, p)
    ELSE has_schema_privilege(g, o, p) END
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS t(g, k, o, p)
"""


def _objects(ctx) -> list[tuple[str, str, str]]:
    """(kind, name as shown, name as the has_*_privilege functions take it) of what exists."""
    rows = ctx.query("SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'S') "
                     "UNION ALL SELECT p.proname || '()', 'f' FROM pg_proc p JOIN pg_namespace n "
                     "ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.pronargs = 0", (SCHEMA, SCHEMA))
    kinds = {"r": "table", "p": "table", "v": "view", "S": "sequence", "f": "function"}
    out = [(kinds[k], name, f"{SCHEMA}.{name}") for name, k in rows]
    out += [("database", figure("database").expected, figure("database").expected), ("schema", SCHEMA, SCHEMA),
            ("schema public", "public", "public")]
    return sorted(out)


def judge_privileges(held: dict[tuple[str, str, str, str], bool]) -> list[tuple]:
    """held: (grantee, kind, object, privilege) -> whether the catalog says it is held. One
    finding (file, who, field, expected, found) per privilege held that plan 9.2 does not
    grant, and per privilege it grants that is not held."""
    out = []
    for (grantee, kind, name, privilege), has in sorted(held.items()):
        want = privilege in PRIVILEGES[grantee][kind]
        if has != want:
            file = SQL_FILES["roles"] if kind in ("database", "schema public") else SQL_FILES["privileges"]
            who = "PUBLIC" if grantee == "public" else f"role {grantee}"
            out.append((file, who, f"{privilege} on {kind} {name}",
                        "granted (plan 9.2)" if want else "not granted (plan 9.2)", "granted" if has else "not granted"))
    return out


@live("live-9.2-privilege-table", "9.2", "every account's and PUBLIC's privileges on every object, exactly plan 9.2's table")
def privilege_table(ctx):
    asked = [(grantee, kind, ident, privilege, name) for kind, name, ident in _objects(ctx)
             for grantee in PRIVILEGES for privilege in PRIVILEGE_KINDS[kind]]
    grantees, kinds, objects, privileges, shown = (list(column) for column in zip(*asked))
    rows = ctx.query(_HAS, (grantees, kinds, objects, privileges))  # one round trip for ~250 questions
    held = {(g, k, name, p): has for (g, k, _, p, has), name in zip(rows, shown)}
    for file, who, path, expected, found in judge_privileges(held):
        yield ctx.finding(file, who, path, expected, found)
    # Plan 9.2 grants whole tables; a column's own grant is a privilege the table view misses.
    for table, column, acl in ctx.query("SELECT c.relname, a.attname, a.attacl::text FROM pg_attribute a "
                                        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n "
                                        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND a.attacl IS NOT NULL "
                                        "ORDER BY 1, 2", (SCHEMA,)):
        yield ctx.finding(SQL_FILES["privileges"], f"column {table}.{column}", "column privileges",
                          "none: plan 9.2 grants whole tables", acl)


@live("live-9.2-role-attributes", "9.2", "each account's attributes, memberships and settings, exactly")
def role_attributes(ctx):
    accounts = list(ROLE_MEMBERSHIPS)
    columns = ", ".join(ROLE_ATTRIBUTES)
    found = {r[0]: dict(zip(ROLE_ATTRIBUTES, r[1:])) for r in ctx.query(
        f"SELECT rolname, {columns} FROM pg_roles WHERE rolname = ANY(%s)", (accounts,))}
    members = {r[0]: sorted(r[1]) for r in ctx.query(
        "SELECT m.rolname, array_agg(g.rolname) FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.member "
        "JOIN pg_roles g ON g.oid = a.roleid WHERE m.rolname = ANY(%s) GROUP BY 1", (accounts,))}
    settings: dict[str, list[str]] = {}
    for role, database, config in ctx.query(
            "SELECT r.rolname, coalesce(d.datname, '(every database)'), s.setconfig FROM pg_db_role_setting s "
            "JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase "
            # Settings that reach this database: its own, and every database's; another
            # database's (localenv's clones carry the same search_path) do not act here.
            "WHERE r.rolname = ANY(%s) AND (s.setdatabase = 0 OR d.datname = current_database())", (accounts,)):
        prefix = "" if database != "(every database)" else f"{database}: "
        settings.setdefault(role, []).extend(prefix + c for c in config)
    for role in accounts:
        if role not in found:
            yield ctx.finding(SQL_FILES["roles"], f"role {role}", "pg_roles", "exists (plan 9.2)", "missing")
            continue
        for attribute, want in ROLE_ATTRIBUTES.items():
            if found[role][attribute] != want:
                yield ctx.finding(SQL_FILES["roles"], f"role {role}", attribute, f"{want} (plan 9.2)", found[role][attribute])
        if members.get(role, []) != sorted(ROLE_MEMBERSHIPS[role]):
            yield ctx.finding(SQL_FILES["roles"], f"role {role}", "member of", sorted(ROLE_MEMBERSHIPS[role]),
                              members.get(role, []))
        if sorted(settings.get(role, [])) != sorted(ROLE_SETTINGS[role]):
            yield ctx.finding(SQL_FILES["roles"], f"role {role}", f"settings in {figure('database').expected}",
                              sorted(ROLE_SETTINGS[role]), sorted(settings.get(role, [])))


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
        error = attempt.statement(conn, f"CREATE TABLE {SCHEMA}.admin_probe (id int); DROP TABLE {SCHEMA}.admin_probe")
        if error:
            yield ctx.finding(SQL_FILES["privileges"], "role product_change_admin", "CREATE/DROP", "allowed",
                              f"{error.sqlstate}: {error.diag.message_primary}")


INVALID_PASSWORD = "28P01"


def _refused_connection(info: dict, sqlstate: str, what: str) -> bool:
    """True when the server refused the connection with sqlstate; False when it connected.
    Refused for any other reason (the server down, a timeout, another code) proves nothing."""
    tried = attempt.connection(info)
    if tried.connected:
        return False
    if tried.sqlstate == sqlstate:
        return True
    raise RefusedForAnotherReason(f"{what} was meant to be refused with SQLSTATE {sqlstate}, but "
                                  + (f"failed with {tried.sqlstate}: " if tried.sqlstate else "failed: ")
                                  + tried.message.splitlines()[0])


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
        # REVOKE CONNECT: "permission denied for database" (insufficient_privilege).
        if not _refused_connection(info, INSUFFICIENT_PRIVILEGE, "a new role's connection"):
            yield ctx.finding(SQL_FILES["roles"], "database product_change_db", "CONNECT for other roles",
                              "refused (REVOKE ALL ON DATABASE FROM PUBLIC)", "a new role connected")
    finally:
        with ctx.connect(autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS pc_conformance_intruder")
    for role in ("app", "admin", "readonly"):
        info = ctx.target.conninfo(role, password="wrong-" + probe_password)
        if not _refused_connection(info, INVALID_PASSWORD, f"{role}'s login with a wrong password"):
            yield ctx.finding(STS_FILE, f"role {ctx.target.account(role).user}", "wrong password", "refused", "accepted")


@live("live-9.2-default-privileges", "9.2", "a table the admin adds later gets the same grants as the others")
def default_privileges(ctx):
    probe = f"{SCHEMA}.pc_conformance_default_probe"
    with ctx.rolled_back("admin") as conn:
        conn.execute(f"CREATE TABLE {probe} (id bigserial PRIMARY KEY)")
        objects = (("table", probe, "has_table_privilege"), ("sequence", f"{probe}_id_seq", "has_sequence_privilege"))
        for kind, name, function in objects:
            for grantee in PRIVILEGES:
                for privilege in PRIVILEGE_KINDS[kind]:
                    has = conn.execute(f"SELECT {function}(%s, %s, %s)", (grantee, name, privilege)).fetchone()[0]
                    want = privilege in PRIVILEGES[grantee][kind]
                    if has != want:
                        who = "PUBLIC" if grantee == "public" else f"role {grantee}"
                        yield ctx.finding(SQL_FILES["privileges"], who, f"{privilege} on a new {kind} (default privileges)",
                                          "granted (plan 9.2)" if want else "not granted (plan 9.2)",
                                          "granted" if has else "not granted")
