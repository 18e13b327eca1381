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
        target.start_server()
        took = time.monotonic() - start
        schema = figure("schema").expected
        with psycopg.connect(**target.conninfo("superuser", dbname=DRILL_DB)) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()[0]
            rows = conn.execute(f"SELECT count(*) FROM {schema}.pc_circuit_breaker_state").fetchone()[0] \
                if tables else 0
        return tables, rows, took
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
        yield ctx.finding(JOB_FILE, "Job/postgresql-product-change-schema-init", "its work after a server kill",
                          f"{want[0]} tables and {want[1]} breaker rows kept: the Job's commit durable "
                          f"(PGOPTIONS=-c synchronous_commit={figure('schema-job-commit').expected})",
                          f"{tables} tables and {rows} rows: lost with the server")
