"""Is the database what the init made? Asked on every `up` before it says "started": the app
account logs in and may read every table and view of the schema (plan 14.2's objects).

A crash can lose what the init wrote (with plan 12.1's fsync=off, which the ConfigMap does not
ship, also damage it); a database that lacks it must not be handed to the service as if it were
whole.
"""

from __future__ import annotations

import psycopg

from conformance.plan import SCHEMA_TABLES, SCHEMA_VIEWS, figure

READABLE = """
SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v') AND has_table_privilege(c.oid, 'SELECT')
"""


def _reason(exc: psycopg.Error) -> str:
    """The server's one line (FATAL: …) without the connection preamble."""
    text = str(exc).strip().splitlines()
    for line in text:
        if "FATAL:" in line:
            return line.split("FATAL:", 1)[1].strip()
    return text[-1] if text else type(exc).__name__


def missing(target) -> list[str]:
    """What the app account cannot do or see; [] when it logs in and reads every object."""
    info = target.conninfo("app")
    schema = figure("schema").expected
    try:
        with psycopg.connect(**info) as conn:
            readable = {row[0] for row in conn.execute(READABLE, (schema,))}
    except psycopg.OperationalError as exc:
        return [f"the app account {info['user']} cannot log in: {_reason(exc)}"]
    lacking = [name for name in (*SCHEMA_TABLES, *SCHEMA_VIEWS) if name not in readable]
    if not lacking:
        return []
    more = f" (and {len(lacking) - 1} more of its tables and views)" if len(lacking) > 1 else ""
    return [f"{schema}.{lacking[0]} readable by {info['user']}{more}"]
