"""Live checks of plan 14.2 and the schema spec: the tables, indexes, views, initial rows,
triggers and functions the init made, as the catalog and their behaviour show them."""

from __future__ import annotations

import psycopg

from conformance.live.context import SQL_FILES
from conformance.plan import (SCHEMA_BREAKER_ROWS as EXPECTED_BREAKERS, SCHEMA_INDEXES as EXPECTED_INDEXES,
                              SCHEMA_TABLES as EXPECTED_TABLES, SCHEMA_VIEWS as EXPECTED_VIEWS, figure)
from conformance.registry import live

SCHEMA = figure("schema").expected

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


