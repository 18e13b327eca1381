"""Live checks of the server, its settings, the init Job, probes, backups and logs: the plan
asserted on a running server. They use only the Target interface, so they run unchanged on
every target. The schema's checks are in schema_checks.py, the accounts' in privilege_checks.py."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from conformance import pgconf, workload
from conformance.live.statements import WRITE_PATH
from conformance.pg.digest import schema_digests
from conformance.plan import POSTGRESQL_CONF, conf_expected, figure
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
    major = ctx.target.pg_major
    if int(version) // 10000 != major:
        plan = figure("pg-major").plan
        chosen = "" if major == plan else f", chosen with --pg-major; the plan says {plan}"
        yield ctx.finding(STS_FILE, "server", "server_version_num", f"{major}xxxx{chosen}", version)
    if encoding != figure("encoding").expected:
        yield ctx.finding(STS_FILE, "database", "encoding", figure("encoding").expected, encoding)
    if zone.upper() != figure("timezone").expected:
        yield ctx.finding(CONFIG_FILE, "server", "TimeZone", figure("timezone").expected, zone)


@live("live-4-settings", "4", "every plan postgresql.conf value (ours where we deviate) as the server reports it, read from the config file")
def settings(ctx):
    names = list(POSTGRESQL_CONF)
    # pg_settings spells some names in mixed case (TimeZone); postgresql.conf names are not.
    rows = ctx.query("SELECT name, setting, unit, source FROM pg_settings WHERE lower(name) = ANY(%s)", (names,))
    reported = {r[0].lower(): r for r in rows}
    for name, (section, _) in POSTGRESQL_CONF.items():
        expected = conf_expected(name)  # the plan's value, or ours where docs/deviations.md says why
        row = reported.get(name)
        if row is None:
            yield ctx.finding(CONFIG_FILE, "pg_settings", name, expected, "not reported")
            continue
        _, setting, unit, source = row
        found = pgconf.normalize(name, setting, base=PG_UNIT_BASE.get(unit or "", None))
        if found != pgconf.normalize(name, expected):
            yield ctx.finding(CONFIG_FILE, "pg_settings", f"{name} (plan {section})", expected, f"{setting}{unit or ''}")
        elif source != "configuration file":
            yield ctx.finding(CONFIG_FILE, "pg_settings", f"{name}.source", "configuration file", source)


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
    return schema_digests(ctx.target.conninfo("superuser", dbname=dbname))


def _dumps(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.is_file()}


@live("live-7.1-backup-restores", "7.1", "the CronJob's script writes a dump that restores with identical contents",
      checklist=("14.3-backup",))
def backup_restores(ctx):
    if not ctx.allow_writes:
        raise Skip("restoring needs --allow-writes")
    backup_dir = Path(ctx.target.backup_dir)
    with ctx.connect("app") as conn:
        conn.execute(WRITE_PATH[0].replace("live-check-1", "backup-check-1"))
        conn.execute(WRITE_PATH[2].replace("live-check-1", "backup-check-1"))
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
