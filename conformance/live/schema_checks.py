"""Live checks of plan 14.2 and the schema spec: the tables, indexes, views, initial rows,
triggers and functions the init made, as the catalog and their behaviour show them."""

from __future__ import annotations

import re

import psycopg

from conformance.live.context import SQL_FILES
from conformance.plan import (SCHEMA_BREAKER_ROWS as EXPECTED_BREAKERS, SCHEMA_CHECKS, SCHEMA_COLUMNS,
                              SCHEMA_FUNCTIONS_SPEC, SCHEMA_INDEXES as EXPECTED_INDEXES, SCHEMA_KEYS,
                              SCHEMA_TABLES as EXPECTED_TABLES, SCHEMA_TRIGGERS,
                              SCHEMA_VIEWS as EXPECTED_VIEWS, SERIAL, VIEW_COLUMNS, VIEW_WINDOWS, figure)
from conformance.pg import attempt
from conformance.registry import live

SCHEMA = figure("schema").expected

_TABLES = """
SELECT c.relname, c.relkind, c.relpersistence, c.relrowsecurity,
       (SELECT count(*) FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN'),
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1
"""


@live("live-14.2-tables", "14.2", "exactly the 3 tables: plain (not partitioned), logged, no row security, no rules",
      checklist=("14.2-tables",))
def tables(ctx):
    rows = ctx.query(_TABLES, (SCHEMA,))
    found = tuple(r[0] for r in rows)
    if found != EXPECTED_TABLES:
        yield ctx.finding(SQL_FILES["schema"], f"schema {SCHEMA}", "tables", list(EXPECTED_TABLES), list(found))
    for name, kind, persistence, rls, rules, policies in rows:
        for field, want, got in (("kind", "r", kind), ("persistence", "p (logged: crash-safe)", persistence),
                                 ("row level security", False, rls), ("rules", 0, rules), ("policies", 0, policies)):
            if str(want).split()[0] != str(got):
                yield ctx.finding(SQL_FILES["schema"], f"table {name}", field, f"{want} (schema spec)",
                                  {"p": "p (partitioned)", "u": "u (UNLOGGED: emptied by every crash)"}.get(got, got))


_INDEXDEF = re.compile(r"CREATE (?P<unique>UNIQUE )?INDEX (?P<name>\S+) ON (?P<table>\S+) USING (?P<method>\S+) "
                       r"\((?P<columns>.*?)\)(?: INCLUDE \((?P<include>.*?)\))?(?: WHERE (?P<predicate>.*))?$")


def judge_index(name: str, definition: str) -> list[tuple[str, str, str]]:
    """(field, expected, found) for every way the index differs from the schema spec's: its
    table, unique or not, method, key columns with their direction, INCLUDE columns,
    predicate, and then its whole definition (opclass, collation, anything else)."""
    spec = EXPECTED_INDEXES[name]
    expected = spec.definition(name, SCHEMA)
    if definition == expected:
        return []
    parsed = _INDEXDEF.match(definition)
    if parsed is None:
        return [("indexdef", expected, definition)]
    found = {"table": parsed["table"], "unique": bool(parsed["unique"]), "method": parsed["method"],
             "columns": parsed["columns"], "include": parsed["include"] or "", "predicate": parsed["predicate"] or "none"}
    wanted = {"table": f"{SCHEMA}.{spec.table}", "unique": spec.unique, "method": spec.method,
              "columns": ", ".join(spec.columns), "include": ", ".join(spec.include),
              "predicate": spec.predicate or "none"}
    differ = [(field, str(wanted[field]), str(found[field])) for field in wanted if wanted[field] != found[field]]
    return differ or [("indexdef", expected, definition)]


@live("live-14.2-indexes", "14.2", "exactly the 12 indexes, each whole: table, unique or not, method, columns with "
      "their direction, predicate", checklist=("14.2-indexes",))
def indexes(ctx):
    rows = ctx.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (SCHEMA,))
    found = {name: definition for name, definition in rows}
    if len(found) != figure("indexes").expected:
        yield ctx.finding(SQL_FILES["schema"], f"schema {SCHEMA}", "indexes",
                          f"{figure('indexes').expected} indexes", f"{len(found)}: {sorted(found)}")
    for name in sorted(EXPECTED_INDEXES):
        if name not in found:
            yield ctx.finding(SQL_FILES["schema"], f"index {name}", "indexdef",
                              EXPECTED_INDEXES[name].definition(name, SCHEMA), "missing")
            continue
        for field, expected, got in judge_index(name, found[name]):
            yield ctx.finding(SQL_FILES["schema"], f"index {name}", field, f"{expected} (schema spec)", got)
    for extra in sorted(set(found) - set(EXPECTED_INDEXES)):
        yield ctx.finding(SQL_FILES["schema"], f"index {extra}", "indexdef", "no such index (schema spec)", found[extra])


@live("live-14.2-views", "14.2", "the 3 monitoring views answer, also for the read-only account",
      checklist=("14.2-views",))
def views(ctx):
    rows = ctx.query("SELECT viewname FROM pg_views WHERE schemaname = %s ORDER BY 1", (SCHEMA,))
    found = tuple(r[0] for r in rows)
    if found != EXPECTED_VIEWS:
        yield ctx.finding(SQL_FILES["schema"], f"schema {SCHEMA}", "views", list(EXPECTED_VIEWS), list(found))
    columns: dict[str, list[str]] = {}
    for view, column in ctx.query("SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                                  "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND "
                                  "c.relkind = 'v' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum",
                                  (SCHEMA,)):
        columns.setdefault(view, []).append(column)
    for view, want in VIEW_COLUMNS.items():
        if view in columns and tuple(columns[view]) != want:
            yield ctx.finding(SQL_FILES["schema"], f"view {view}", "columns", f"{list(want)} (schema spec)",
                              columns[view])
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


_TRIGGERS = """
SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid), t.tgenabled
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND NOT t.tgisinternal
"""


def trigger_definition(name: str) -> str:
    """pg_get_triggerdef's form of a trigger of the schema spec."""
    table, timing, events, level, function = SCHEMA_TRIGGERS[name]
    return (f"CREATE TRIGGER {name} {timing} {' OR '.join(events)} ON {SCHEMA}.{table} FOR EACH {level} "
            f"EXECUTE FUNCTION {SCHEMA}.{function}()")


@live("live-14.2-triggers", "14.2", "exactly the spec's triggers (timing, events, level, function), enabled, and "
      "updated_at kept current by them on both tables", checklist=("14.2-triggers",))
def triggers(ctx):
    found = {name: (table, definition, enabled) for name, table, definition, enabled in ctx.query(_TRIGGERS, (SCHEMA,))}
    for name in sorted(SCHEMA_TRIGGERS):
        expected = trigger_definition(name)
        if name not in found:
            yield ctx.finding(SQL_FILES["schema"], f"trigger {name}", "definition", f"{expected} (schema spec)", "missing")
            continue
        _, definition, enabled = found[name]
        if definition != expected:
            yield ctx.finding(SQL_FILES["schema"], f"trigger {name}", "definition", f"{expected} (schema spec)",
                              definition)
        if enabled != "O":
            yield ctx.finding(SQL_FILES["schema"], f"trigger {name}", "enabled", "O (fires in every session)",
                              {"D": "D (disabled)", "R": "R (replica only)", "A": "A (always)"}.get(enabled, enabled))
    for extra in sorted(set(found) - set(SCHEMA_TRIGGERS)):
        yield ctx.finding(SQL_FILES["schema"], f"trigger {extra}", "definition", "no such trigger (schema spec)",
                          found[extra][1])
    with ctx.rolled_back("admin") as conn:
        conn.execute(f"INSERT INTO {SCHEMA}.pc_product_change_history (line_number, customer_id, current_product_code, "
                     "target_product_code, updated_at) VALUES ('01000000000', 'C1', 'P1', 'P2', now() - interval '1 day')")
        conn.execute(f"UPDATE {SCHEMA}.pc_circuit_breaker_state SET updated_at = now() - interval '1 day'")
        conn.execute("SAVEPOINT s")  # the UPDATEs below must fire the triggers again
        conn.execute(f"UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'VALIDATED' WHERE customer_id = 'C1'")
        conn.execute(f"UPDATE {SCHEMA}.pc_circuit_breaker_state SET failure_count = failure_count + 1")
        # Only the rows updated above: a database in use has older rows, rightly.
        for table, updated in (("pc_product_change_history", "customer_id = 'C1'"), ("pc_circuit_breaker_state", "true")):
            stale = conn.execute(f"SELECT count(*) FROM {SCHEMA}.{table} WHERE updated_at < now() AND {updated}").fetchone()[0]
            if stale:
                yield ctx.finding(SQL_FILES["schema"], f"table {table}", "updated_at after UPDATE", "now()",
                                  f"{stale} rows kept their old updated_at")


_FUNCTIONS = """
SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid), l.lanname,
       p.provolatile, p.prosecdef, coalesce(p.proconfig, '{}'), p.prokind
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = %s
"""
_VOLATILITY = {"v": "VOLATILE", "s": "STABLE", "i": "IMMUTABLE"}


def judge_function(name: str, found: tuple) -> list[tuple[str, str, str]]:
    """(field, expected, found) for each way a function differs from the spec's."""
    spec = SCHEMA_FUNCTIONS_SPEC[name]
    arguments, result, language, volatility, definer, config, kind = found
    out = []
    for field, want, got in (("kind", "f", kind), ("arguments", f"({spec.arguments})", f"({arguments})"),
                             ("returns", spec.result, result), ("language", spec.language, language),
                             ("volatility", _VOLATILITY[spec.volatility], _VOLATILITY.get(volatility, volatility)),
                             ("security", "DEFINER" if spec.security_definer else "INVOKER",
                              "DEFINER" if definer else "INVOKER"),
                             ("SET", ", ".join(spec.config) or "nothing", ", ".join(config) or "nothing")):
        if want != got:
            out.append((field, want, got))
    return out


@live("live-14.2-functions", "14.2", "exactly the spec's functions: signature, result, language, volatility, "
      "security invoker, a pinned search_path", checklist=("14.2-triggers",))
def functions(ctx):
    found: dict[str, list[tuple]] = {}
    for name, *rest in ctx.query(_FUNCTIONS, (SCHEMA,)):
        found.setdefault(name, []).append(tuple(rest))
    for name in sorted(SCHEMA_FUNCTIONS_SPEC):
        if name not in found:
            yield ctx.finding(SQL_FILES["schema"], f"function {name}", "definition", "defined (schema spec)", "missing")
            continue
        if len(found[name]) > 1:  # an overload beside it: a call may resolve to the other one
            yield ctx.finding(SQL_FILES["schema"], f"function {name}", "overloads", "one function",
                              ", ".join(f"{name}({f[0]})" for f in found[name]))
        for field, expected, got in judge_function(name, found[name][0]):
            yield ctx.finding(SQL_FILES["schema"], f"function {name}({found[name][0][0]})", field,
                              f"{expected} (schema spec)", got)
    for extra in sorted(set(found) - set(SCHEMA_FUNCTIONS_SPEC)):
        yield ctx.finding(SQL_FILES["schema"], f"function {extra}", "definition", "no such function (schema spec)",
                          f"{extra}({found[extra][0][0]})")


@live("live-14.2-cleanup-old-logs", "14.2", "cleanup_old_logs deletes only KOS logs older than 12 months",
      checklist=("14.2-triggers",))
def cleanup_old_logs(ctx):
    with ctx.rolled_back("admin") as conn:
        conn.execute(f"DELETE FROM {SCHEMA}.pc_kos_integration_log")
        # Two just past the 12-month boundary and two inside it, one of those just inside.
        for age in ("13 months", "12 months 1 hour", "12 months -1 hour", "1 day"):
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


# -- columns and constraints, exactly as the schema spec lists them ---------------------------

_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum
"""


def _default(table: str, column: str, spec) -> str | None:
    if spec is SERIAL:
        return f"nextval('{SCHEMA}.{table}_{column}_seq'::regclass)"
    return spec


def judge_columns(found: dict[str, dict[str, tuple]]) -> list[tuple]:
    """found: table -> column -> (type, nullable, default). One finding (object, field,
    expected, found) per column missing, extra, or of another type, nullability or default."""
    out = []
    for table, columns in SCHEMA_COLUMNS.items():
        have = found.get(table)
        if have is None:  # also live-14.2-tables' finding; here: nothing checked is no pass
            out.append((f"table {table}", "columns", f"{len(columns)} columns (schema spec)",
                        "no such table: its columns were not checked"))
            continue
        for name, type_, nullable, default in columns:
            if name not in have:
                out.append((f"table {table}", f"column {name}", f"{type_} (schema spec)", "missing"))
                continue
            want = (type_, nullable, _default(table, name, default))
            for field, expected, got in zip(("type", "nullable", "default"), want, have[name]):
                if expected != got:
                    out.append((f"table {table}", f"column {name}.{field}", f"{expected} (schema spec)", got))
        for extra in sorted(set(have) - {c[0] for c in columns}):
            out.append((f"table {table}", f"column {extra}", "no such column (schema spec)", have[extra][0]))
    return out


@live("live-14.2-columns", "14.2", "every column's type and length, nullability and default, exactly the schema spec's",
      checklist=("14.2-tables",))
def columns(ctx):
    found: dict[str, dict[str, tuple]] = {}
    for table, name, type_, nullable, default in ctx.query(_COLUMNS, (SCHEMA,)):
        found.setdefault(table, {})[name] = (type_, nullable, default)
    for obj, field, expected, got in judge_columns(found):
        yield ctx.finding(SQL_FILES["schema"], obj, field, expected, got)


_CONSTRAINTS = """
SELECT c.relname, k.contype, k.conname, pg_get_constraintdef(k.oid),
       ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND k.contype <> 'n'
"""
# (PostgreSQL 18 lists NOT NULL as constraints of type n: live-14.2-columns judges nullability.)
_LITERAL = re.compile(r"'((?:[^']|'')*)'")
_KINDS = {"p": "primary key", "u": "unique", "c": "check", "f": "foreign key", "x": "exclusion", "t": "trigger"}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def expected_checks(conn, found_order: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(table, column) -> the definitions the spec's CHECK has on this server, as
    pg_get_constraintdef prints it: made on a scratch copy of its table (rolled back by the
    caller) and read back, so the comparison is exact on every major. A dump and restore (also
    pg_upgrade's) re-creates a CHECK from that text, which this server may print otherwise
    (`x::text = ANY (ARRAY[...])`): those forms, each made from the last, are the same CHECK.
    The values go in the order the database has them where it has the same set."""
    out = {}
    for i, ((table, column), allowed) in enumerate(sorted(SCHEMA_CHECKS.items())):
        order = found_order.get((table, column))
        values = order if order is not None and sorted(order) == sorted(allowed) else list(allowed)
        forms: list[str] = []
        expression = f"{column} IN ({', '.join(map(_literal, values))})"
        for round_trip in range(4):
            probe = f"pc_probe_check_{i}_{round_trip}"
            conn.execute(f"CREATE TEMP TABLE {probe} (LIKE {SCHEMA}.{table})")
            conn.execute(f"ALTER TABLE {probe} ADD CONSTRAINT probe CHECK ({expression})")
            shown = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                 "WHERE conrelid = %s::regclass AND conname = 'probe'", (probe,)).fetchone()[0]
            if shown in forms:
                break
            forms.append(shown)
            expression = shown[len("CHECK "):] if shown.startswith("CHECK ") else shown
        out[(table, column)] = tuple(forms)
    return out


def judge_constraints(found: list[tuple[str, str, str, str, list]],
                      checks: dict[tuple[str, str], tuple[str, ...]]) -> list[tuple]:
    """found: (table, contype, name, definition, columns) of every constraint of the schema's
    tables; checks: the spec's CHECK definitions as this server prints them. One finding per
    key or CHECK that is missing, extra or defined otherwise, and per other constraint."""
    out = []
    expected_keys = {(table, f"{'PRIMARY KEY' if kind == 'primary key' else 'UNIQUE'} ({', '.join(cols)})")
                     for table, kinds in SCHEMA_KEYS.items() for kind, lists in kinds.items() for cols in lists}
    have_keys = {(table, definition) for table, kind, _, definition, _ in found if kind in ("p", "u")}
    for table, definition in sorted(expected_keys - have_keys):
        out.append((f"table {table}", "key", f"{definition} (schema spec)", "missing"))
    for table, definition in sorted(have_keys - expected_keys):
        out.append((f"table {table}", "key", "no such key (schema spec)", definition))
    have_checks = set()
    for table, kind, name, definition, cols in sorted(found):
        if kind in ("p", "u"):
            continue
        if kind != "c":
            out.append((f"table {table}", f"constraint {name}", f"no {_KINDS.get(kind, kind)} constraint (schema spec)",
                        definition))
            continue
        key = (table, cols[0]) if len(cols) == 1 else None
        if key not in checks:
            out.append((f"table {table}", f"constraint {name}", "no such CHECK (schema spec)", definition))
            continue
        have_checks.add(key)
        if definition not in checks[key]:
            allowed = sorted(SCHEMA_CHECKS[key])
            out.append((f"table {table}", f"column {key[1]} CHECK",
                        f"{checks[key][0]}: one of {allowed} and nothing else (schema spec)", definition))
    for table, column in sorted(set(checks) - have_checks):
        out.append((f"table {table}", f"column {column} CHECK", f"one of {sorted(SCHEMA_CHECKS[(table, column)])} "
                    "(schema spec)", "no CHECK"))
    return out


@live("live-14.2-constraints", "14.2", "primary keys, unique constraints and each CHECK exactly as defined, nothing else",
      checklist=("14.2-tables",))
def constraints(ctx):
    found = [tuple(r) for r in ctx.query(_CONSTRAINTS, (SCHEMA,))]
    order = {(table, cols[0]): [v.replace("''", "'") for v in _LITERAL.findall(definition)]
             for table, kind, _, definition, cols in found if kind == "c" and len(cols) == 1}
    with ctx.rolled_back("superuser") as conn:
        checks = expected_checks(conn, order)
    for obj, field, expected, got in judge_constraints(found, checks):
        yield ctx.finding(SQL_FILES["schema"], obj, field, expected, got)


# -- what the schema does, tried inside a transaction that is rolled back ----------------------

CHECK_VIOLATION = "23514"
# A row each table accepts with only its NOT NULL columns without default given.
_MINIMAL = {
    "pc_product_change_history": "(line_number, customer_id, current_product_code, target_product_code) "
                                 "VALUES ('01000000000', 'RULES', 'P1', 'P2')",
    "pc_kos_integration_log": "(integration_type, method, endpoint_url) VALUES ('PRODUCT_INFO', 'GET', '/rules')",
    "pc_circuit_breaker_state": None,  # its 3 rows exist; a fourth service name is not allowed
}


_UUID = re.compile(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}")


def _filled_as_specified(default: str, got, now) -> bool:
    """Whether a value an INSERT left to the column's default is what that default gives."""
    if default == "now()":
        return got == now  # now() is the transaction's start: the same for every row in it
    if "gen_random_uuid" in default:
        return bool(_UUID.fullmatch(str(got)))
    return str(got).lower() == default.split("::")[0].strip("'").lower()


@live("live-14.2-column-rules", "14.2", "defaults are filled in; each CHECK accepts every allowed value and refuses others",
      checklist=("14.2-tables",))
def column_rules(ctx):
    with ctx.rolled_back("admin") as conn:
        ids = {}
        for table, values in _MINIMAL.items():
            if values is None:
                ids[table] = conn.execute(f"SELECT min(id) FROM {SCHEMA}.{table}").fetchone()[0]
                continue
            row = conn.execute(f"INSERT INTO {SCHEMA}.{table} {values} RETURNING *").fetchone()
            names = [d.name for d in conn.execute(f"SELECT * FROM {SCHEMA}.{table} LIMIT 0").description]
            filled = dict(zip(names, row))
            ids[table] = filled["id"]
            now = conn.execute("SELECT now()").fetchone()[0]
            for name, _, _, default in SCHEMA_COLUMNS[table]:
                if default is None or default is SERIAL:
                    continue
                got = filled.get(name)
                if not _filled_as_specified(default, got, now):
                    yield ctx.finding(SQL_FILES["schema"], f"table {table}", f"column {name} default",
                                      f"{default} filled in (schema spec)", got)
        # One breaker row left: setting it to each allowed service name must not collide with
        # the unique constraint on the others.
        conn.execute(f"DELETE FROM {SCHEMA}.pc_circuit_breaker_state WHERE id <> %s", (ids["pc_circuit_breaker_state"],))
        for (table, column), allowed in SCHEMA_CHECKS.items():
            update = f"UPDATE {SCHEMA}.{table} SET {column} = %s WHERE id = %s"
            for value in allowed:
                error = attempt.statement(conn, update, (value, ids[table]))
                if error is not None:
                    yield ctx.finding(SQL_FILES["schema"], f"table {table}", f"column {column} = {value!r}",
                                      "accepted (schema spec)", f"{error.sqlstate}: {error.diag.message_primary}")
            outside = "NOT_" + allowed[0]
            error = attempt.statement(conn, update, (outside, ids[table]))
            if error is None:
                yield ctx.finding(SQL_FILES["schema"], f"table {table}", f"column {column} = {outside!r}",
                                  f"refused by a CHECK: one of {list(allowed)} (schema spec)", "accepted")
            elif error.sqlstate != CHECK_VIOLATION or error.diag.table_name != table:
                raise RuntimeError(f"{table}.{column} = {outside!r} was meant to fail a CHECK (SQLSTATE "
                                   f"{CHECK_VIOLATION}) but failed with {error.sqlstate}: {error.diag.message_primary}")


# Rows are placed this far inside and outside a view's window.
_MARGIN = "1 hour"


def _ago(window: str | None, inside: bool = True) -> str:
    """now() itself (always today), or the window's far edge moved inside or outside by the margin."""
    if window is None:
        return "now()"
    return f"now() - interval '{window}' {'+' if inside else '-'} interval '{_MARGIN}'"


@live("live-14.2-view-results", "14.2", "the views count exactly the rows inside their windows and compute as specified",
      checklist=("14.2-views",))
def view_results(ctx):
    history, log, breakers = (f"{SCHEMA}.{t}" for t in ("pc_product_change_history", "pc_kos_integration_log",
                                                         "pc_circuit_breaker_state"))
    with ctx.rolled_back("admin") as conn:
        conn.execute(f"DELETE FROM {log}")
        conn.execute(f"DELETE FROM {history}")
        window = VIEW_WINDOWS["v_product_change_summary"]
        for at, seconds in ((_ago(window), 90), (_ago(window, inside=False), 90), (_ago(None), 30)):
            conn.execute(f"INSERT INTO {history} (line_number, customer_id, current_product_code, target_product_code, "
                         f"process_status, requested_at, processed_at) VALUES ('010', 'WIN', 'P1', 'P2', 'COMPLETED', "
                         f"{at}, {at} + make_interval(secs => %s))", (seconds,))
        got = conn.execute(f"SELECT request_count, today_count, avg_processing_time_sec::float "
                           f"FROM {SCHEMA}.v_product_change_summary WHERE process_status = 'COMPLETED'").fetchone()
        if got != (2, 1, 60.0):
            yield ctx.finding(SQL_FILES["schema"], "view v_product_change_summary", "row COMPLETED",
                              f"(2, 1, 60.0): request_count, today_count, avg_processing_time_sec of rows {_MARGIN} "
                              f"inside the {window} window (90 s), {_MARGIN} outside it and today (30 s) (schema spec)", got)
        window = VIEW_WINDOWS["v_kos_integration_summary"]
        for at, success, ms in ((_ago(window), True, 100), (_ago(window, inside=False), True, 900),
                                (_ago(None), False, 200), (_ago(None), True, 300)):
            conn.execute(f"INSERT INTO {log} (integration_type, method, endpoint_url, is_success, response_time_ms, "
                         f"created_at) VALUES ('PRODUCT_CHANGE', 'POST', '/w', %s, %s, {at})", (success, ms))
        got = conn.execute(f"SELECT total_requests, success_count, success_rate::float, avg_response_time_ms::float, "
                           f"today_count FROM {SCHEMA}.v_kos_integration_summary "
                           "WHERE integration_type = 'PRODUCT_CHANGE'").fetchone()
        if got != (3, 2, 66.67, 200.0, 2):
            yield ctx.finding(SQL_FILES["schema"], "view v_kos_integration_summary", "row PRODUCT_CHANGE",
                              f"(3, 2, 66.67, 200.0, 2): total_requests, success_count, success_rate, "
                              f"avg_response_time_ms, today_count of rows {_MARGIN} inside the {window} window, "
                              f"{_MARGIN} outside it and two today (schema spec)", got)
        cases = {  # service -> (state, success_count, next attempt, the action the spec names)
            "KOS_CUSTOMER": ("OPEN", 0, "now() - interval '1 second'", "READY_FOR_HALF_OPEN"),
            "KOS_PRODUCT": ("OPEN", 0, "now() + interval '1 hour'", "STABLE"),
            "KOS_CHANGE": ("HALF_OPEN", None, "NULL", "READY_FOR_CLOSE"),
        }
        for service, (state, successes, attempt, _) in cases.items():
            count = "success_threshold" if successes is None else str(successes)
            conn.execute(f"UPDATE {breakers} SET state = %s, success_count = {count}, next_attempt_time = {attempt} "
                         "WHERE service_name = %s", (state, service))
        got = dict(conn.execute(f"SELECT service_name, recommended_action FROM {SCHEMA}.v_circuit_breaker_status"))
        conn.execute(f"UPDATE {breakers} SET success_count = success_threshold - 1 WHERE service_name = 'KOS_CHANGE'")
        below = conn.execute(f"SELECT recommended_action FROM {SCHEMA}.v_circuit_breaker_status "
                             "WHERE service_name = 'KOS_CHANGE'").fetchone()[0]
    want = {service: case[3] for service, case in cases.items()}
    if got != want or below != "STABLE":
        yield ctx.finding(SQL_FILES["schema"], "view v_circuit_breaker_status", "recommended_action",
                          f"{want}, and STABLE for HALF_OPEN below success_threshold (schema spec)",
                          f"{got}, {below} below the threshold")


@live("live-14.2-comments", "14.2", "every table and column carries a comment saying what it holds")
def comments(ctx):
    rows = ctx.query(
        "SELECT c.relname, NULL, obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p') "
        "UNION ALL SELECT c.relname, a.attname, col_description(c.oid, a.attnum) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2",
        (SCHEMA, SCHEMA))
    seen = {table for table, _, _ in rows}
    for table in sorted(set(EXPECTED_TABLES) - seen):  # nothing to read is no pass
        yield ctx.finding(SQL_FILES["schema"], f"table {table}", "comment", "COMMENT ON saying what it holds "
                          "(schema spec)", "no such table: its comments were not checked")
    for table, column, text in rows:
        if not (text or "").strip():
            yield ctx.finding(SQL_FILES["schema"], f"table {table}", f"column {column} comment" if column else "comment",
                              "COMMENT ON saying what it holds (schema spec)", "none")
