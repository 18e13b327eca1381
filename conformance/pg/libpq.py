"""The environment libpq's programs (psql, pg_restore, pg_amcheck, pgbench, vacuumdb) read,
built from a target's conninfo in one place. It holds the password: give it to a child
process, never print it."""

from __future__ import annotations


def env(conninfo: dict, dbname: str | None = None, **extra: str) -> dict[str, str]:
    out = {"PGHOST": str(conninfo["host"]), "PGPORT": str(conninfo["port"]), "PGUSER": conninfo["user"],
           "PGPASSWORD": conninfo["password"], "PGDATABASE": dbname or conninfo["dbname"]}
    out.update(extra)
    return out
