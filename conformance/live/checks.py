"""Live checks: the plan asserted on a running server. They use only the Target interface, so
they run unchanged on every target."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import psycopg
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from conformance import pgconf, workload
from conformance.live.context import SQL_FILES
from conformance.plan import (POSTGRESQL_CONF, SCHEMA_BREAKER_ROWS as EXPECTED_BREAKERS,
                              SCHEMA_INDEXES as EXPECTED_INDEXES, SCHEMA_TABLES as EXPECTED_TABLES,
                              SCHEMA_VIEWS as EXPECTED_VIEWS, figure)
from conformance.registry import Skip, live

CONFIG_FILE = "postgresql-product-change-config.yaml"
STS_FILE = "postgresql-product-change-statefulset.yaml"
JOB_FILE = "postgresql-product-change-schema-init-job.yaml"
CRON_FILE = "postgresql-product-change-backup-cronjob.yaml"
SCHEMA = figure("schema").expected

PG_UNIT_BASE = {"8kB": 8192, "kB": 1024, "MB": 1024**2, "B": 1, "ms": 1, "s": 1000, "min": 60000}


# -- server -----------------------------------------------------------------------------------

@live("live-2.2-server", "2.2", "server is PostgreSQL 14, database UTF8, time zone UTC",
      checklist=("14.1-db-connection",))
def server(ctx):
    with ctx.connect("app") as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        encoding = conn.execute("SELECT pg_encoding_to_char(encoding) FROM pg_database "
                                "WHERE datname = current_database()").fetchone()[0]
        zone = conn.execute("SHOW TimeZone").fetchone()[0]
    if int(version) // 10000 != figure("pg-major").expected:
        yield ctx.finding(STS_FILE, "server", "server_version_num", f"{figure('pg-major').expected}xxxx", version)
    if encoding != figure("encoding").expected:
        yield ctx.finding(STS_FILE, "database", "encoding", figure("encoding").expected, encoding)
    if zone.upper() != figure("timezone").expected:
        yield ctx.finding(CONFIG_FILE, "server", "TimeZone", figure("timezone").expected, zone)


@live("live-4-settings", "4", "every plan postgresql.conf value as the server reports it, read from the config file")
def settings(ctx):
    names = list(POSTGRESQL_CONF)
    # pg_settings spells some names in mixed case (TimeZone); postgresql.conf names are not.
    rows = ctx.query("SELECT name, setting, unit, source FROM pg_settings WHERE lower(name) = ANY(%s)", (names,))
    reported = {r[0].lower(): r for r in rows}
    for name, (section, plan_value) in POSTGRESQL_CONF.items():
        row = reported.get(name)
        if row is None:
            yield ctx.finding(CONFIG_FILE, "pg_settings", name, plan_value, "not reported")
            continue
        _, setting, unit, source = row
        found = pgconf.normalize(name, setting, base=PG_UNIT_BASE.get(unit or "", None))
        if found != pgconf.normalize(name, plan_value):
            yield ctx.finding(CONFIG_FILE, "pg_settings", f"{name} (plan {section})", plan_value, f"{setting}{unit or ''}")
        elif source != "configuration file":
            yield ctx.finding(CONFIG_FILE, "pg_settings", f"{name}.source", "configuration file", source)


# -- schema -----------------------------------------------------------------------------------

@live("live-14.2-tables", "14.2", "exactly the 3 tables", checklist=("14.2-tables",))
def tables(ctx):
    rows = ctx.query("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1", (SCHEMA,))
    found = tuple(r[0] for r in rows)
    if found != EXPECTED_TABLES:
        yield ctx.finding(SQL_FILES["schema"], f"schema {SCHEMA}", "tables", list(EXPECTED_TABLES), list(found))


@live("live-14.2-indexes", "14.2", "exactly the 12 indexes, by name and definition", checklist=("14.2-indexes",))
def indexes(ctx):
    rows = ctx.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (SCHEMA,))
    found = {name: definition for name, definition in rows}
    if len(found) != figure("indexes").expected:
        yield ctx.finding(SQL_FILES["schema"], f"schema {SCHEMA}", "indexes",
                          f"{figure('indexes').expected} indexes", f"{len(found)}: {sorted(found)}")
    for name, columns in EXPECTED_INDEXES.items():
        if name not in found:
            yield ctx.finding(SQL_FILES["schema"], f"index {name}", "indexdef", columns, "missing")
        elif not found[name].endswith(f"USING btree {columns}"):
            yield ctx.finding(SQL_FILES["schema"], f"index {name}", "indexdef", columns, found[name])


@live("live-14.2-views", "14.2", "the 3 monitoring views answer, also for the read-only account",
      checklist=("14.2-views",))
def views(ctx):
    rows = ctx.query("SELECT viewname FROM pg_views WHERE schemaname = %s ORDER BY 1", (SCHEMA,))
    found = tuple(r[0] for r in rows)
    if found != EXPECTED_VIEWS:
        yield ctx.finding(SQL_FILES["schema"], f"schema {SCHEMA}", "views", list(EXPECTED_VIEWS), list(found))
    for view in found:
        try:
            ctx.query(f"SELECT * FROM {SCHEMA}.{view}", role="readonly")
        except psycopg.Error as exc:
            yield ctx.finding(SQL_FILES["schema"], f"view {view}", "SELECT as readonly", "rows", str(exc).splitlines()[0])
    statuses = {r[0]: r[1] for r in ctx.query(
        f"SELECT service_name, recommended_action FROM {SCHEMA}.v_circuit_breaker_status")}
    if statuses and set(statuses.values()) != {"STABLE"}:
        yield ctx.finding(SQL_FILES["schema"], "view v_circuit_breaker_status", "recommended_action",
                          "STABLE for CLOSED breakers", statuses)


@live("live-14.2-initial-data", "14.2", "the 3 initial Circuit Breaker rows", checklist=("14.2-initial-data",))
def initial_data(ctx):
    rows = ctx.query(f"SELECT service_name, state, failure_threshold, success_threshold, timeout_duration_ms "
                     f"FROM {SCHEMA}.pc_circuit_breaker_state")
    found = {tuple(r) for r in rows}
    if found != EXPECTED_BREAKERS:
        yield ctx.finding(SQL_FILES["data"], "pc_circuit_breaker_state", "rows", sorted(EXPECTED_BREAKERS), sorted(found))


@live("live-14.2-triggers", "14.2", "updated_at is kept current by trigger on both tables", checklist=("14.2-triggers",))
def triggers(ctx):
    with ctx.rolled_back("admin") as conn:
        conn.execute(f"INSERT INTO {SCHEMA}.pc_product_change_history (line_number, customer_id, current_product_code, "
                     "target_product_code, updated_at) VALUES ('01000000000', 'C1', 'P1', 'P2', now() - interval '1 day')")
        conn.execute(f"UPDATE {SCHEMA}.pc_circuit_breaker_state SET updated_at = now() - interval '1 day'")
        conn.execute("SAVEPOINT s")  # the UPDATEs below must fire the triggers again
        conn.execute(f"UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'VALIDATED' WHERE customer_id = 'C1'")
        conn.execute(f"UPDATE {SCHEMA}.pc_circuit_breaker_state SET failure_count = failure_count + 1")
        for table in ("pc_product_change_history", "pc_circuit_breaker_state"):
            stale = conn.execute(f"SELECT count(*) FROM {SCHEMA}.{table} WHERE updated_at < now()").fetchone()[0]
            if stale:
                yield ctx.finding(SQL_FILES["schema"], f"table {table}", "updated_at after UPDATE", "now()",
                                  f"{stale} rows kept their old updated_at")


@live("live-14.2-cleanup-old-logs", "14.2", "cleanup_old_logs deletes only KOS logs older than 12 months",
      checklist=("14.2-triggers",))
def cleanup_old_logs(ctx):
    with ctx.rolled_back("admin") as conn:
        conn.execute(f"DELETE FROM {SCHEMA}.pc_kos_integration_log")
        for age in ("13 months", "12 months 1 day", "11 months", "1 day"):
            conn.execute(f"INSERT INTO {SCHEMA}.pc_kos_integration_log (integration_type, method, endpoint_url, created_at) "
                         "VALUES ('PRODUCT_INFO', 'GET', '/kos/product', now() - %s::interval)", (age,))
        conn.execute(f"INSERT INTO {SCHEMA}.pc_product_change_history (line_number, customer_id, current_product_code, "
                     "target_product_code, requested_at, created_at) VALUES "
                     "('01000000000', 'OLD', 'P1', 'P2', now() - interval '3 years', now() - interval '3 years')")
        deleted = conn.execute(f"SELECT {SCHEMA}.cleanup_old_logs()").fetchone()[0]
        left = conn.execute(f"SELECT count(*) FROM {SCHEMA}.pc_kos_integration_log").fetchone()[0]
        history = conn.execute(f"SELECT count(*) FROM {SCHEMA}.pc_product_change_history WHERE customer_id = 'OLD'").fetchone()[0]
    if (deleted, left) != (2, 2):
        yield ctx.finding(SQL_FILES["schema"], "function cleanup_old_logs()", "deleted/kept",
                          "2 deleted (older than 12 months), 2 kept", f"{deleted} deleted, {left} kept")
    if history != 1:
        yield ctx.finding(SQL_FILES["schema"], "function cleanup_old_logs()", "change history", "never deleted",
                          "old history rows deleted")


# -- the init Job ------------------------------------------------------------------------------

def _catalog(ctx):
    return ctx.query(
        "SELECT c.relkind, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s UNION ALL SELECT 'f', proname FROM pg_proc p JOIN pg_namespace n "
        "ON n.oid = p.pronamespace WHERE n.nspname = %s UNION ALL "
        "SELECT 'd', service_name || state || failure_count FROM product_change.pc_circuit_breaker_state ORDER BY 1, 2",
        (SCHEMA, SCHEMA))


@live("live-6.1-init-rerun", "6.1", "the init Job's script run again succeeds and changes nothing",
      checklist=("14.1-schema-job",))
def init_rerun(ctx):
    if not ctx.allow_writes:
        raise Skip("writes are not allowed on this target (--allow-writes)")
    before = _catalog(ctx)
    proc = ctx.target.run_script(workload.schema_init(ctx.manifests))
    if proc.returncode != 0:
        yield ctx.finding(JOB_FILE, "Job/postgresql-product-change-schema-init", "second run exit code", 0,
                          f"{proc.returncode}: {(proc.stderr or '').strip().splitlines()[-1:]}")
    after = _catalog(ctx)
    if before != after:
        yield ctx.finding(JOB_FILE, "Job/postgresql-product-change-schema-init", "objects after a second run",
                          f"the same {len(before)} objects and rows", f"{len(after)}, differing")


@live("live-6.1-init-fails-on-bad-sql", "6.1", "the init Job's script exits non-zero when the SQL fails, and changes nothing",
      checklist=("14.1-schema-job",))
def init_fails_on_bad_sql(ctx):
    if not ctx.allow_writes:
        raise Skip("writes are not allowed on this target (--allow-writes)")
    broken = Path(ctx.target.backup_dir).parent / "broken-sql"
    broken.mkdir(exist_ok=True)
    (broken / "01-good.sql").write_text(f"CREATE TABLE {SCHEMA}.should_not_survive (id int);\n")
    (broken / "02-broken.sql").write_text("CREATE TABLE oops (;\n")
    before = _catalog(ctx)
    proc = ctx.target.run_script(workload.schema_init(ctx.manifests), mounts={figure("schema-mount").expected: broken})
    if proc.returncode == 0:
        yield ctx.finding(JOB_FILE, "Job/postgresql-product-change-schema-init", "exit code with broken SQL",
                          "non-zero", "0 (the Job would report success)")
    if _catalog(ctx) != before:
        yield ctx.finding(JOB_FILE, "Job/postgresql-product-change-schema-init", "objects after a failed run",
                          "unchanged (one transaction)", "changed")


# -- accounts and privileges -------------------------------------------------------------------

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


_WRITE_PATH = [
    f"INSERT INTO {SCHEMA}.pc_product_change_history (request_id, line_number, customer_id, current_product_code, "
    "target_product_code) VALUES ('live-check-1', '01012345678', 'CUST-1', 'PLAN-A', 'PLAN-B')",
    f"UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'VALIDATED', validated_at = now(), "
    "version = version + 1 WHERE request_id = 'live-check-1'",
    f"INSERT INTO {SCHEMA}.pc_kos_integration_log (request_id, integration_type, method, endpoint_url, "
    "response_status, response_time_ms, is_success) VALUES ('live-check-1', 'PRODUCT_CHANGE', 'POST', '/kos/change', 200, 35, true)",
    f"UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'COMPLETED', processed_at = now(), "
    "version = version + 1 WHERE request_id = 'live-check-1'",
    f"UPDATE {SCHEMA}.pc_circuit_breaker_state SET success_count = success_count + 1 WHERE service_name = 'KOS_CHANGE'",
    f"SELECT * FROM {SCHEMA}.v_product_change_summary",
]
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
        for sql in _WRITE_PATH:
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
        writes = {"INSERT": _WRITE_PATH[0], "UPDATE": _WRITE_PATH[4], **_FORBIDDEN}
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


# -- probes ------------------------------------------------------------------------------------

@live("live-8.2-probes", "8.2", "readiness, liveness and startup probes pass on the running server and fail when it is stopped",
      checklist=("14.3-health-checks", "14.1-statefulset-ready"))
def probes(ctx):
    if not ctx.allow_writes:
        raise Skip("stopping the server needs --allow-writes")
    names = ("readinessProbe", "livenessProbe", "startupProbe")
    for name in names:
        rc = ctx.target.run_probe(name)
        if rc != 0:
            yield ctx.finding(STS_FILE, "StatefulSet/postgresql-product-change", f"{name} on a running server", "exit 0", rc)
    ctx.target.stop_server()
    try:
        for name in names:
            rc = ctx.target.run_probe(name)
            if rc == 0:
                yield ctx.finding(STS_FILE, "StatefulSet/postgresql-product-change", f"{name} on a stopped server",
                                  "non-zero exit", "0")
    finally:
        ctx.target.start_server()


# -- backup ------------------------------------------------------------------------------------

def _table_digest(ctx, dbname: str) -> dict:
    out = {}
    with ctx.connect(dbname=dbname) as conn:
        for table in EXPECTED_TABLES:
            out[table] = conn.execute(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) "
                                      f"FROM {SCHEMA}.{table} t").fetchone()
    return out


def _dumps(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.is_file()}


@live("live-7.1-backup-restores", "7.1", "the CronJob's script writes a dump that restores with identical contents",
      checklist=("14.3-backup",))
def backup_restores(ctx):
    if not ctx.allow_writes:
        raise Skip("restoring needs --allow-writes")
    backup_dir = Path(ctx.target.backup_dir)
    with ctx.connect("app") as conn:
        conn.execute(_WRITE_PATH[0].replace("live-check-1", "backup-check-1"))
        conn.execute(_WRITE_PATH[2].replace("live-check-1", "backup-check-1"))
    before = _dumps(backup_dir)
    proc = ctx.target.run_script(workload.backup(ctx.manifests))
    new = sorted(_dumps(backup_dir) - before)
    if proc.returncode != 0 or len(new) != 1:
        yield ctx.finding(CRON_FILE, "CronJob/postgresql-product-change-backup", "backup run",
                          "exit 0 and one new dump", f"exit {proc.returncode}, new files {new}: "
                          f"{(proc.stderr or '').strip().splitlines()[-1:]}")
        return
    with ctx.connect(autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS pc_restore_check")
        conn.execute("CREATE DATABASE pc_restore_check")
    try:
        env = {"PGDATABASE": "pc_restore_check", "PGUSER": ctx.target.account("superuser").user,
               "PGPASSWORD": ctx.target.account("superuser").password}
        restore = ctx.target.run_script(_restore_container(ctx, new[0]), env=env)
        if restore.returncode != 0:
            yield ctx.finding(CRON_FILE, "dump " + new[0], "pg_restore", "exit 0",
                              (restore.stderr or "").strip().splitlines()[-1:])
            return
        original, restored = _table_digest(ctx, ctx.target.database), _table_digest(ctx, "pc_restore_check")
        if original != restored:
            yield ctx.finding(CRON_FILE, "dump " + new[0], "restored rows", original, restored)
    finally:
        with ctx.connect(autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS pc_restore_check")
        with ctx.connect("admin") as conn:
            conn.execute(f"DELETE FROM {SCHEMA}.pc_kos_integration_log WHERE request_id = 'backup-check-1'")
            conn.execute(f"DELETE FROM {SCHEMA}.pc_product_change_history WHERE request_id = 'backup-check-1'")


def _restore_container(ctx, dump_name: str) -> workload.Container:
    """The backup container with its command replaced by a restore of one dump, so the restore
    runs where and as the backup runs (same image, env, mounts)."""
    c = workload.backup(ctx.manifests)
    spec = dict(c.spec, command=["/bin/bash", "-c",
                                 f'set -euo pipefail; pg_restore --no-password --exit-on-error -d "$PGDATABASE" '
                                 f'"$BACKUP_DIR/{dump_name}"'], args=[])
    return workload.Container(c.owner, c.index, spec, c.env)


DAY = 86400
# age in seconds -> kept after a successful run?
_RETENTION_CASES = {DAY: True, 3 * DAY: True, 7 * DAY - 10 * 60: True, 7 * DAY + 10 * 60: False,
                    8 * DAY: False, 10 * DAY: False}


def _seed_old_dumps(ctx) -> tuple[Path, dict[str, bool]]:
    """Empty the target's backup folder and fill it with dumps of known ages: (folder, name -> kept?)."""
    if not ctx.allow_writes:
        raise Skip("needs --allow-writes")
    backup_dir = Path(ctx.target.backup_dir)
    for p in backup_dir.iterdir():
        p.unlink()
    now = time.time()
    expected = {}
    for age, kept in _RETENTION_CASES.items():
        name = f"{figure('database').expected}_{time.strftime('%Y%m%d_%H%M%S', time.gmtime(now - age))}.dump"
        path = backup_dir / name
        path.write_bytes(b"old dump")
        os.utime(path, (now - age, now - age))
        expected[name] = kept
    return backup_dir, expected


@live("live-7.1-backup-failure-keeps-old", "7.1", "a failed backup exits non-zero, adds no file and deletes nothing",
      checklist=("14.3-backup",))
def backup_failure_keeps_old(ctx):
    backup_dir, _ = _seed_old_dumps(ctx)
    before = _dumps(backup_dir)
    proc = ctx.target.run_script(workload.backup(ctx.manifests), env={"PGPASSWORD": "wrong-" + os.urandom(6).hex()})
    after = _dumps(backup_dir)
    if proc.returncode == 0:
        yield ctx.finding(CRON_FILE, "CronJob/postgresql-product-change-backup", "exit code with a wrong password",
                          "non-zero", "0 (the Job would report success)")
    if after - before:
        yield ctx.finding(CRON_FILE, "CronJob/postgresql-product-change-backup", "files after a failed run",
                          "no new file", sorted(after - before))
    if before - after:
        yield ctx.finding(CRON_FILE, "CronJob/postgresql-product-change-backup", "old dumps after a failed run",
                          "all kept", f"deleted {sorted(before - after)}")


@live("live-7.1-backup-retention", "7.1", "a successful backup keeps exactly the last 7 days of dumps",
      checklist=("14.3-backup",))
def backup_retention(ctx):
    backup_dir, expected = _seed_old_dumps(ctx)
    proc = ctx.target.run_script(workload.backup(ctx.manifests))
    if proc.returncode != 0:
        yield ctx.finding(CRON_FILE, "CronJob/postgresql-product-change-backup", "backup run", "exit 0", proc.returncode)
        return
    left = _dumps(backup_dir)
    wrong = {name: ("kept" if name in left else "deleted") for name, kept in expected.items() if (name in left) != kept}
    if wrong:
        yield ctx.finding(CRON_FILE, "CronJob/postgresql-product-change-backup", "retention",
                          f"dumps younger than {figure('backup-retention-days').expected} days kept, older deleted", wrong)


# -- logging -----------------------------------------------------------------------------------

_LOG_NAME = re.compile(r"postgresql-\d{4}-\d{2}-\d{2}_\d{6}\.log$")
_LOG_EVENTS = {
    "slow query (log_min_duration_statement = 1000)": re.compile(r"duration: \d{4,}\.\d+ ms\s+statement: SELECT pg_sleep"),
    "connection (log_connections)": re.compile(r"connection authorized: user=product_change_readonly"),
    "disconnection (log_disconnections)": re.compile(r"disconnection: session time: .*user=product_change_readonly"),
    "checkpoint (log_checkpoints)": re.compile(r"checkpoint (starting|complete)"),
}


@live("live-4.2-logging", "4.2", "slow queries, connections, disconnections and checkpoints reach log files named as planned",
      checklist=("14.3-logs",))
def logging(ctx):
    with ctx.connect("readonly") as conn:
        conn.execute("SELECT pg_sleep(1.05)")
    if ctx.allow_writes:
        with ctx.connect(autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def missing_events():
        text = "\n".join(ctx.target.log_files().values())
        return [name for name, pattern in _LOG_EVENTS.items() if not pattern.search(text)]

    # The collector writes asynchronously: poll, bounded.
    waiting = retry(stop=stop_after_delay(10), wait=wait_fixed(0.2), retry=retry_if_result(bool),
                    retry_error_callback=lambda state: state.outcome.result())(missing_events)
    for name in waiting():
        yield ctx.finding(CONFIG_FILE, "server log", name, "a log line", "none")
    names = list(ctx.target.log_files())
    if not names or not all(_LOG_NAME.match(n) for n in names):
        yield ctx.finding(CONFIG_FILE, "server log", "log_filename", "postgresql-%Y-%m-%d_%H%M%S.log", names)
