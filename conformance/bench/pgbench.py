"""pgbench, run and read: one run of one workload, its throughput and per-transaction
latencies (from pgbench's own transaction log), and the commands to rerun it by hand."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conformance.plan import figure

SCHEMA = figure("schema").expected

# The Product-Change service's write path (schema-spec), one pgbench "transaction" = one
# request: each step commits on its own, as the service's steps do.
PRODUCT_CHANGE_SCRIPT = f"""\
\\set line random(1000000000, 1999999999)
\\set breaker random(1, 3)
INSERT INTO {SCHEMA}.pc_product_change_history (line_number, customer_id, current_product_code, target_product_code) VALUES ('0' || :line, 'CUST-' || :client_id, 'PLAN-A', 'PLAN-B') RETURNING id \\gset
UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'VALIDATED', validated_at = now(), version = version + 1 WHERE id = :id;
INSERT INTO {SCHEMA}.pc_kos_integration_log (request_id, integration_type, method, endpoint_url, response_status, response_time_ms, is_success) SELECT request_id, 'PRODUCT_CHANGE', 'POST', '/kos/change', 200, 35, true FROM {SCHEMA}.pc_product_change_history WHERE id = :id;
UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'COMPLETED', processed_at = now(), version = version + 1 WHERE id = :id;
UPDATE {SCHEMA}.pc_circuit_breaker_state SET success_count = success_count + 1 WHERE service_name = (ARRAY['KOS_CUSTOMER', 'KOS_PRODUCT', 'KOS_CHANGE'])[:breaker];
"""


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    role: str            # account it runs as (Target.conninfo role)
    database: str | None  # None: the product database
    script: str | None   # None: pgbench's built-in tpcb-like
    commits_per_tx: int

    def args(self, script_path: Path | None) -> list[str]:
        return ["--builtin=tpcb-like"] if self.script is None else ["--file", str(script_path)]


BENCH_DB = "pc_bench"
TPCB = Workload("tpcb-like", "pgbench built-in TPC-B-like (superuser, database pc_bench)", "superuser", BENCH_DB, None, 1)
PRODUCT_CHANGE = Workload("product-change", "the service's write path (app account, product_change_db)", "app", None,
                          PRODUCT_CHANGE_SCRIPT, 5)
WORKLOADS = {w.name: w for w in (TPCB, PRODUCT_CHANGE)}

_TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")
_TX = re.compile(r"number of transactions actually processed: (\d+)")
_FAILED = re.compile(r"number of failed transactions: (\d+)")


@dataclass(frozen=True)
class RunResult:
    tps: float
    transactions: int
    latencies_ms: tuple[float, ...]

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[index]


class PgbenchError(Exception):
    pass


def env_for(conninfo: dict, database: str | None) -> dict[str, str]:
    from conformance.pg import libpq

    return libpq.env(conninfo, database, PATH="/usr/bin:/bin", LC_ALL="C.UTF-8")


def init_argv(pgbench: str, scale: int) -> list[str]:
    return [pgbench, "--initialize", "--quiet", f"--scale={scale}"]


def run_argv(pgbench: str, workload: Workload, clients: int, duration: float, seed: int,
             script_path: Path | None, log_prefix: Path) -> list[str]:
    return [pgbench, *workload.args(script_path), f"--client={clients}", f"--jobs={clients}",
            f"--time={max(1, round(duration))}", f"--random-seed={seed}", "--no-vacuum", "--log",
            f"--log-prefix={log_prefix}"]


def parse_output(stdout: str) -> tuple[float, int]:
    tps, tx = _TPS.search(stdout), _TX.search(stdout)
    if not tps or not tx:
        raise PgbenchError(f"pgbench printed no tps line: {stdout.strip().splitlines()[-1:] or '(nothing)'}")
    return float(tps.group(1)), int(tx.group(1))


def read_latencies(log_prefix: Path) -> tuple[float, ...]:
    """pgbench --log lines: client_id transaction_no time_us script_no epoch epoch_us."""
    out = []
    for path in sorted(log_prefix.parent.glob(log_prefix.name + "*")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                out.append(int(parts[2]) / 1000.0)
        path.unlink()
    return tuple(out)


def run(pgbench: str, conninfo: dict, workload: Workload, clients: int, duration: float, seed: int,
        workdir: Path) -> RunResult:
    workdir.mkdir(parents=True, exist_ok=True)
    script_path = None
    if workload.script is not None:
        script_path = workdir / f"{workload.name}.sql"
        script_path.write_text(workload.script)
    prefix = workdir / f"log-{workload.name}"
    argv = run_argv(pgbench, workload, clients, duration, seed, script_path, prefix)
    proc = subprocess.run(argv, env=env_for(conninfo, workload.database), capture_output=True, text=True,
                          timeout=duration * 4 + 60, check=False, cwd=workdir)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()
        raise PgbenchError(f"pgbench {workload.name} failed: {last[-1] if last else proc.returncode}")
    tps, tx = parse_output(proc.stdout)
    return RunResult(tps, tx, read_latencies(prefix))
