"""Does a change of sql/ reach an existing database? On two scratch embedded servers: the base's
SQL, then this tree's (the running dev database after the init Job runs again), against this
tree's on an empty one (what every check runs on). Whatever differs between their catalogs is
what the idempotent SQL silently skipped, and needs a migration (sql/migrations/README.md)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from conformance import schema_configmap, workload
from conformance.manifests import Manifests
from conformance.results import ChangeFinding

SYSTEM = "('pg_catalog', 'information_schema')"
# key -> definition, for every object the schema SQL makes; one query per kind of object.
CATALOG = {
    "schema": f"""SELECT nspname, 'owner ' || pg_get_userbyid(nspowner) || ' acl ' || coalesce(array_to_string(nspacl, ','), '')
                 FROM pg_namespace WHERE nspname NOT IN {SYSTEM} AND nspname NOT LIKE 'pg\\_%'""",
    "relation": f"""SELECT n.nspname || '.' || c.relname, c.relkind || ' owner ' || pg_get_userbyid(c.relowner)
                           || ' acl ' || coalesce(array_to_string(c.relacl, ','), '')
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname NOT IN {SYSTEM} AND n.nspname NOT LIKE 'pg\\_%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')""",
    "column": f"""SELECT n.nspname || '.' || c.relname || '.' || a.attname,
                         format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                         || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
                  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                  WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
                    AND n.nspname NOT IN {SYSTEM} AND n.nspname NOT LIKE 'pg\\_%'""",
    "constraint": f"""SELECT n.nspname || '.' || c.relname || '.' || co.conname, pg_get_constraintdef(co.oid)
                      FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname NOT IN {SYSTEM} AND n.nspname NOT LIKE 'pg\\_%'""",
    "index": f"SELECT schemaname || '.' || indexname, indexdef FROM pg_indexes WHERE schemaname NOT IN {SYSTEM}",
    "view": f"""SELECT schemaname || '.' || viewname, definition FROM pg_views WHERE schemaname NOT IN {SYSTEM}""",
    "function": f"""SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                           pg_get_functiondef(p.oid) || ' acl ' || coalesce(array_to_string(p.proacl, ','), '')
                    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname NOT IN {SYSTEM} AND n.nspname NOT LIKE 'pg\\_%' AND p.prokind IN ('f', 'p')""",
    "trigger": f"""SELECT n.nspname || '.' || c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
                   FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE NOT t.tgisinternal AND n.nspname NOT IN {SYSTEM}""",
    "role": """SELECT rolname, concat_ws(' ', CASE WHEN rolsuper THEN 'superuser' END, CASE WHEN rolcanlogin THEN 'login' END,
                      CASE WHEN rolcreatedb THEN 'createdb' END, CASE WHEN rolcreaterole THEN 'createrole' END,
                      CASE WHEN NOT rolinherit THEN 'noinherit' END, 'connection limit ' || rolconnlimit,
                      (SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m
                       JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid))
               FROM pg_roles r WHERE rolname !~ '^pg_' AND rolname <> current_user""",
    "default privileges": """SELECT pg_get_userbyid(d.defaclrole) || ' in ' || coalesce(n.nspname, 'every schema') || ' on '
                                    || d.defaclobjtype, array_to_string(d.defaclacl, ',')
                             FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace""",
    "database": "SELECT 'this database', coalesce(array_to_string(datacl, ','), '') FROM pg_database "
                "WHERE datname = current_database()",
}
# Seed rows (03-data.sql), without what differs between two builds anyway: time stamps and
# numbers drawn from sequences.
ROWS_QUERY = f"""SELECT n.nspname, c.relname,
                        array_agg(quote_ident(a.attname) ORDER BY a.attnum)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN {SYSTEM} AND n.nspname NOT LIKE 'pg\\_%'
                   AND a.attidentity = '' AND format_type(a.atttypid, NULL) NOT LIKE 'timestamp%'
                   AND format_type(a.atttypid, NULL) <> 'date'
                   AND coalesce(pg_get_expr(d.adbin, d.adrelid), '') NOT LIKE 'nextval(%'
                 GROUP BY n.nspname, c.relname"""
MAX_SEED_ROWS = 1000


def snapshot(conninfo: dict) -> dict[str, str]:
    import psycopg

    out: dict[str, str] = {}
    with psycopg.connect(**conninfo) as conn:
        for kind, query in CATALOG.items():
            for key, definition in conn.execute(query):
                out[f"{kind} {key}"] = definition
        for schema, table, columns in conn.execute(ROWS_QUERY).fetchall():
            listed = ", ".join(columns)
            rows = conn.execute(f"SELECT {listed} FROM {schema}.{table} ORDER BY {listed} LIMIT {MAX_SEED_ROWS + 1}").fetchall()
            if len(rows) <= MAX_SEED_ROWS:
                out[f"rows of {schema}.{table}"] = repr(rows)
    return out


def _apply(target, container: workload.Container, files: dict[str, str], folder: Path) -> str | None:
    """The init Job's own script on these SQL files; the error's last line when it fails."""
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        (folder / name).chmod(0o644)
    mount = next(m for m in container.mounts() if m.source.get("configMap"))  # the schema ConfigMap's
    proc = target.run_script(container, mounts={mount.path: folder})
    if proc.returncode == 0:
        return None
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return tail[-1] if tail else f"exit {proc.returncode}"


CONSEQUENCE = ("a fresh database (where every check runs) has this; the running dev database, updated by the init "
               "Job, would not: sql/ is idempotent and skips what already exists")
REMEDY = "add a migration, sql/migrations/NNNN-what.sql, idempotent, that brings an existing database there (sql/migrations/README.md)"


def compare(base_sql: Path, now_sql: Path, manifests: Manifests, progress=lambda m: None) -> list[ChangeFinding]:
    """Findings for what the base-then-now database lacks or has in excess; [] when they match."""
    from conformance.targets.native import NativeTarget

    base_files, now_files = schema_configmap.sql_files(base_sql), schema_configmap.sql_files(now_sql)
    container = workload.schema_init(manifests)
    where = f"{now_sql.name}/"  # the findings concern the SQL as a whole, not one file
    with tempfile.TemporaryDirectory(prefix="pc-schema-drift-") as tmp:
        with NativeTarget(manifests, progress=progress) as updated:
            progress("the base's sql/ on a scratch server, then this tree's")
            error = _apply(updated, container, base_files, Path(tmp) / "base")
            if error:
                return [ChangeFinding(where, "the base's sql/", "-", "the base's own SQL to apply (it is the base)",
                                      f"it fails on an empty server: {error}", None,
                                      "check that the base is the commit the dev cluster runs")]
            error = _apply(updated, container, now_files, Path(tmp) / "now")
            if error:
                return [ChangeFinding(where, "sql/", "-", "the init Job to succeed on the running dev database",
                                      f"this tree's SQL fails on a database the base's made: {error}", None, REMEDY)]
            old = snapshot(updated.conninfo("superuser"))
        with NativeTarget(manifests, progress=progress) as fresh:
            progress("this tree's sql/ on an empty scratch server")
            error = _apply(fresh, container, now_files, Path(tmp) / "fresh")
            if error:
                return [ChangeFinding(where, "sql/", "-", "this tree's SQL to build a fresh database",
                                      f"it fails: {error}", None, "fix sql/")]
            new = snapshot(fresh.conninfo("superuser"))
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            out.append(ChangeFinding(where, key, "-", CONSEQUENCE, "missing on an updated database", None, REMEDY))
        elif key not in new:
            out.append(ChangeFinding(where, key, "-", "a fresh database does not have it: the running one keeps it",
                                     "left over on an updated database", None, REMEDY))
        elif old[key] != new[key]:
            out.append(ChangeFinding(where, key, "-", CONSEQUENCE,
                                     f"updated database: {_short(old[key])}; fresh: {_short(new[key])}", None, REMEDY))
    return out


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
