"""What a database holds, table by table, as a row count and a checksum of the rows: the same
before and after a backup is restored or the data is carried to another major."""

from __future__ import annotations

import psycopg
from psycopg import sql


def table_digests(conninfo: dict, schema: str, tables) -> dict[str, tuple[int, str]]:
    """table -> (rows, md5 of the rows as text in id order)."""
    out = {}
    with psycopg.connect(**conninfo) as conn:
        for table in tables:
            query = sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) "
                            "FROM {}.{} t").format(sql.Identifier(schema), sql.Identifier(table))
            out[table] = tuple(conn.execute(query).fetchone())
    return out


def schema_digests(conninfo: dict) -> dict[str, tuple[int, str]]:
    """Every table of the plan's schema: the one digest the rehearsal, the restore checks and
    localenv's upgrade compare."""
    from conformance.plan import SCHEMA_TABLES, figure

    return table_digests(conninfo, figure("schema").expected, SCHEMA_TABLES)
