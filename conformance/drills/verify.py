"""After a fault and the restart: which acknowledged requests are gone, does every surviving
row still hold what was written, and are tables and indexes intact (pg_amcheck)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from conformance.drills.load import PREFIX, ROW_DIGEST, SCHEMA, Acked
from conformance.errors import one_line


@dataclass
class Damage:
    lost: list[str] = field(default_factory=list)          # acknowledged, not there
    lost_ms: float = 0.0                                    # the span of acknowledgements lost, up to the fault
    wrong_rows: list[str] = field(default_factory=list)    # there, but not what was written
    amcheck: list[str] = field(default_factory=list)       # pg_amcheck's complaints (first lines)
    error: str = ""                                         # could not even look (the database is unusable)

    @property
    def corrupt(self) -> bool:
        return bool(self.wrong_rows or self.amcheck or self.error)


def inspect(conninfo: dict, acked: list[Acked], fault_at: float, pg_amcheck: Path | None) -> Damage:
    """conninfo: a superuser session on the service's database."""
    damage = Damage()
    try:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            rows = dict(conn.execute(f"SELECT request_id, {ROW_DIGEST} FROM {SCHEMA}.pc_product_change_history "
                                     "WHERE request_id LIKE %s", (PREFIX + "%",)).fetchall())
    except psycopg.Error as exc:
        damage.error = one_line(exc, 300)
        return damage
    lost = [a for a in acked if a.request_id not in rows]
    damage.lost = [a.request_id for a in lost]
    if lost:
        damage.lost_ms = max(0.0, (fault_at - min(a.at for a in lost)) * 1000)
    damage.wrong_rows = [a.request_id for a in acked if a.request_id in rows and rows[a.request_id] != a.digest]
    if pg_amcheck is not None:
        damage.amcheck = amcheck(conninfo, pg_amcheck)
    return damage


def amcheck(conninfo: dict, pg_amcheck: Path) -> list[str]:
    """Every table's heap and every B-tree index, with the heap checked against the indexes."""
    from conformance.pg import libpq

    env = libpq.env(conninfo, PATH="/usr/bin:/bin")
    proc = subprocess.run([str(pg_amcheck), "--install-missing", "--heapallindexed", "--no-password",
                           conninfo["dbname"]], capture_output=True, text=True, timeout=600, env=env, check=False)
    if proc.returncode == 0:
        return []
    lines = [l for l in (proc.stdout + proc.stderr).splitlines() if l.strip()]
    return lines[:5] or [f"pg_amcheck exit {proc.returncode}"]


def clear(conninfo: dict) -> None:
    """Remove the drill's rows, so that each trial counts its own."""
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {SCHEMA}.pc_kos_integration_log WHERE request_id LIKE %s", (PREFIX + "%",))
        conn.execute(f"DELETE FROM {SCHEMA}.pc_product_change_history WHERE request_id LIKE %s", (PREFIX + "%",))
