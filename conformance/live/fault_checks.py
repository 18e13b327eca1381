"""The dev tuning's cost under a fault (plan 12.1): a server killed right after the init Job
completed still has everything the Job made, and comes back. With synchronous_commit=off
the Job's commit would be acknowledged before its WAL was written; the Job's session
commits durably (docs/deviations.md), and this proves it on every run."""

from __future__ import annotations

import psycopg
from psycopg import sql

from conformance import workload
from conformance.plan import SCHEMA_BREAKER_ROWS, SCHEMA_TABLES, figure
from conformance.registry import Skip, live

JOB_FILE = "postgresql-product-change-schema-init-job.yaml"
# A database of its own: the drill re-runs the init there, and the server's real one is untouched.
DRILL_DB = "pc_conformance_drill"


def _drop(target) -> None:
    with psycopg.connect(**target.conninfo("superuser", dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DRILL_DB)))


def _count(target, dbname: str) -> tuple[int, int]:
    schema = figure("schema").expected
    with psycopg.connect(**target.conninfo("superuser", dbname=dbname)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()[0]
        has_breakers = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                                    (f"{schema}.pc_circuit_breaker_state",)).fetchone()[0]
        rows = conn.execute(f"SELECT count(*) FROM {schema}.pc_circuit_breaker_state").fetchone()[0] \
            if has_breakers else 0
    return tables, rows


def init_without_kill(target, manifests) -> tuple[int, int]:
    """What the init Job's script makes in a scratch database when nothing strikes: the measure
    of what a kill can have taken."""
    _drop(target)
    with psycopg.connect(**target.conninfo("superuser", dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DRILL_DB)))
    try:
        target.run_script(workload.schema_init(manifests), env={"PGDATABASE": DRILL_DB})
        return _count(target, DRILL_DB)
    finally:
        _drop(target)


def init_then_kill(target, manifests) -> tuple[int, int, float]:
    """The init Job's script into a scratch database, the server SIGKILLed at once and started
    again: (tables, breaker rows) found there afterwards, and the seconds the start took. Also
    the fault drills' "kill after the init". psycopg.OperationalError when it does not answer."""
    import time

    _drop(target)
    with psycopg.connect(**target.conninfo("superuser", dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DRILL_DB)))
    try:
        proc = target.run_script(workload.schema_init(manifests), env={"PGDATABASE": DRILL_DB})
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            raise RuntimeError(f"the init Job's script failed before the kill: {tail}")
        target.kill_server()  # at once: no time for the WAL writer to catch up
        start = time.monotonic()
        target.start_server(new_pod=False)  # the container restarted in its pod
        took = time.monotonic() - start
        return (*_count(target, DRILL_DB), took)
    finally:
        _drop(target)


@live("live-12.1-init-survives-a-kill", "12.1", "what the init Job made survives a server killed right after it, "
      "and the server comes back", checklist=("14.1-schema-job",))
def init_survives_a_kill(ctx):
    if not ctx.allow_writes:
        raise Skip("killing the server needs --allow-writes")
    try:
        tables, rows, _ = init_then_kill(ctx.target, ctx.manifests)
    except psycopg.OperationalError as exc:
        yield ctx.finding(JOB_FILE, "server", "after a kill", "back up, answering", str(exc).splitlines()[0])
        return
    want = (len(SCHEMA_TABLES), len(SCHEMA_BREAKER_ROWS))
    if (tables, rows) != want:
        unkilled = init_without_kill(ctx.target, ctx.manifests)
        cause = "lost with the server" if unkilled != (tables, rows) else \
            f"the script makes no more without a kill ({unkilled[0]} tables, {unkilled[1]} rows): not a loss, an init " \
            "that does not make the schema (live-14.2-tables)"
        yield ctx.finding(JOB_FILE, "Job/postgresql-product-change-schema-init", "its work after a server kill",
                          f"{want[0]} tables and {want[1]} breaker rows kept: the Job's commit durable "
                          f"(PGOPTIONS=-c synchronous_commit={figure('schema-job-commit').expected})",
                          f"{tables} tables and {rows} rows: {cause}")
