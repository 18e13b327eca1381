"""Run the configurations side by side on one server: each round visits every configuration
(in an order rotated per round, so drift of the machine hits all alike), and per
configuration every workload, each after a CHECKPOINT and a pg_stat_wal reset, with one more
CHECKPOINT halfway through the run so full-page images are written within it."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from conformance.bench import pgbench
from conformance.bench.configs import SETTINGS, Config, configurations

SEED = 20261126
REPORTED_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "wal_level", "wal_buffers", "wal_sync_method",
                     "wal_writer_delay",
                     "max_wal_size", "checkpoint_timeout", "checkpoint_completion_target", "shared_buffers",
                     "effective_cache_size", "work_mem", "max_connections")


@dataclass(frozen=True)
class Options:
    rounds: int
    duration: int      # seconds per pgbench run
    clients: int
    scale: int         # pgbench scale factor, at least the number of clients
    fsync_seconds: int  # pg_test_fsync -s; 0 skips it
    workloads: tuple[str, ...] = ("tpcb-like", "product-change")
    configs: tuple[str, ...] | None = None  # None: all

    def __post_init__(self):
        if self.scale < self.clients:
            raise ValueError("scale must be at least the number of clients (TPC-B branch contention)")


FULL = Options(rounds=5, duration=20, clients=4, scale=8, fsync_seconds=2)
QUICK = Options(rounds=3, duration=3, clients=2, scale=4, fsync_seconds=1)
# The live check's short form: the durable baseline and the ConfigMap's configuration, interleaved
# over three 1-second rounds (6 s of load). What does not depend on the machine's speed
# (settings in effect, WAL flushes per transaction) decides; throughput decides only
# where its interval over the rounds lies wholly on one side of the threshold, and warns when
# it does not (tuning_checks.py). bench measures the gains themselves.
CHECK = Options(rounds=3, duration=1, clients=2, scale=2, fsync_seconds=0, workloads=("tpcb-like",),
                configs=("durable", "manifests"))


@dataclass(frozen=True)
class Sample:
    round: int
    config: str
    workload: str
    tps: float
    transactions: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    wal_bytes: int
    wal_records: int
    wal_fpi: int
    wal_flushes: int | None = None  # WAL fsyncs (wal_flushes()); None where not measured

    def per_tx(self, field_name: str) -> float | None:
        value = getattr(self, field_name)
        return value / self.transactions if self.transactions and value is not None else None


@dataclass
class Measurement:
    options: Options
    configs: list[Config]
    samples: list[Sample] = field(default_factory=list)
    settings: dict = field(default_factory=dict)      # as the server reported them, the ConfigMap's configuration
    server_version: str = ""
    fsync_ops_per_s: float | None = None
    fsync_output: str = ""
    commands: list[str] = field(default_factory=list)
    machine: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"options": asdict(self.options), "configs": [asdict(c) for c in self.configs],
                "samples": [asdict(s) for s in self.samples], "settings": self.settings,
                "server_version": self.server_version, "pg_test_fsync_ops_per_s": self.fsync_ops_per_s,
                "commands": self.commands, "machine": self.machine}


def wal_flushes(conn) -> int:
    """WAL fsyncs since the statistics were last reset: what a durable commit waits for and
    synchronous_commit=off leaves to the WAL writer. pg_stat_wal.wal_sync up to 17; 18 moved it
    to pg_stat_io's WAL rows."""
    if conn.info.server_version >= 180000:
        # context 'normal' only: 'init' counts the flushes of new segments, which wal_sync did not.
        return int(conn.execute("SELECT coalesce(sum(fsyncs), 0) FROM pg_stat_io WHERE object = 'wal' "
                                "AND context = 'normal'").fetchone()[0])
    return int(conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0])


def rotated(items: list, round_index: int) -> list:
    k = round_index % len(items)
    return items[k:] + items[:k]


class Harness:
    def __init__(self, target, manifests, options: Options, progress=None, workdir: Path | None = None):
        self.target = target
        self.options = options
        self.progress = progress or (lambda message: None)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="pc-bench-"))  # scripts and pgbench's logs
        all_configs = configurations(manifests)
        self.configs = [c for c in all_configs if options.configs is None or c.name in options.configs]
        from conformance.pg.binaries import locate

        # The client tools of the server's major (pgbench, pg_test_fsync).
        self.binaries = getattr(target, "binaries", None) or locate(major=target.pg_major)

    def _connect(self, dbname: str = "postgres"):
        return psycopg.connect(**self.target.conninfo("superuser", dbname=dbname), autocommit=True)

    # -- configuration --------------------------------------------------------------------
    def apply(self, config: Config) -> None:
        from conformance.bench.configs import apply

        apply(self._connect, config)

    def restore(self) -> None:
        with self._connect() as conn:
            for name in SETTINGS:
                conn.execute(f"ALTER SYSTEM RESET {name}")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP DATABASE IF EXISTS {pgbench.BENCH_DB}")

    # -- running --------------------------------------------------------------------------
    def prepare(self, measurement: Measurement) -> None:
        with self._connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {pgbench.BENCH_DB}")
            conn.execute(f"CREATE DATABASE {pgbench.BENCH_DB}")
            measurement.server_version = conn.execute("SHOW server_version").fetchone()[0]
        tool = self.binaries.tool("pgbench")
        info = self.target.conninfo("superuser")
        argv = pgbench.init_argv(tool, self.options.scale)
        self.progress(f"pgbench --initialize --scale={self.options.scale}")
        proc = subprocess.run(argv, env=pgbench.env_for(info, pgbench.BENCH_DB), capture_output=True, text=True,
                              timeout=600, check=False)
        if proc.returncode != 0:
            raise pgbench.PgbenchError(f"pgbench --initialize failed: {proc.stderr.strip().splitlines()[-1:]}")
        measurement.commands.append(" ".join(["pgbench", *argv[1:], pgbench.BENCH_DB]))

    def sample(self, round_index: int, config: Config, workload: pgbench.Workload, seed: int) -> Sample:
        with self._connect() as conn:
            conn.execute("CHECKPOINT")
            conn.execute("SELECT pg_stat_reset_shared('wal')")
            if conn.info.server_version >= 180000:
                conn.execute("SELECT pg_stat_reset_shared('io')")
        halfway = threading.Timer(self.options.duration / 2, self._checkpoint_quietly)
        halfway.start()
        try:
            result = pgbench.run(self.binaries.tool("pgbench"), self.target.conninfo(workload.role), workload,
                                 self.options.clients, self.options.duration, seed, self.workdir)
        finally:
            halfway.cancel()
            halfway.join()
        with self._connect() as conn:
            wal_records, wal_fpi, wal_bytes = conn.execute(
                "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal").fetchone()
            flushes = wal_flushes(conn)
        return Sample(round_index + 1, config.name, workload.name, result.tps, result.transactions,
                      result.percentile(50), result.percentile(95), result.percentile(99),
                      int(wal_bytes), int(wal_records), int(wal_fpi), flushes)

    def _checkpoint_quietly(self) -> None:
        try:
            with self._connect() as conn:
                conn.execute("CHECKPOINT")
        except psycopg.Error:
            pass

    def measure(self) -> Measurement:
        m = Measurement(self.options, self.configs, machine={"cpus": os.cpu_count(), "platform": platform.platform(),
                                                              "python": platform.python_version(), "target": self.target.name})
        try:
            return self._measure(m)
        finally:
            self.close()  # also when preparing failed

    def close(self) -> None:
        """Remove the scripts and logs folder when this harness made it."""
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _measure(self, m: Measurement) -> Measurement:
        self.prepare(m)
        workloads = [pgbench.WORKLOADS[name] for name in self.options.workloads]
        for wl in workloads:
            m.commands.append(" ".join(pgbench.run_argv("pgbench", wl, self.options.clients, self.options.duration,
                                                         SEED, Path(f"{wl.name}.sql") if wl.script else None,
                                                         Path("log"))))
        total = self.options.rounds * len(self.configs) * len(workloads)
        done = 0
        try:
            for r in range(self.options.rounds):
                for config in rotated(self.configs, r):
                    self.apply(config)
                    for w_index, wl in enumerate(workloads):
                        done += 1
                        self.progress(f"run {done}/{total}: round {r + 1}/{self.options.rounds} · {config.name} · "
                                      f"{wl.name} · {self.options.duration} s")
                        m.samples.append(self.sample(r, config, wl, SEED + 1000 * r + w_index))
            # Report the server's settings as the ConfigMap sets them (when that was measured).
            self.apply(next((c for c in self.configs if c.from_configmap), self.configs[0]))
            m.settings = self._settings()
        finally:
            self.restore()
        if self.options.fsync_seconds:
            m.fsync_ops_per_s, m.fsync_output = self.pg_test_fsync()
        return m

    def _settings(self) -> dict:
        with self._connect() as conn:
            rows = conn.execute("SELECT name, setting, unit, source FROM pg_settings WHERE name = ANY(%s)",
                                (list(REPORTED_SETTINGS),)).fetchall()
        return {name: {"setting": setting, "unit": unit, "source": source} for name, setting, unit, source in rows}

    def pg_test_fsync(self) -> tuple[float | None, str]:
        """The disk's flush ceiling: fdatasync of one 8 kB write per second, where the data is."""
        directory = getattr(getattr(self.target, "server", None), "datadir", None)
        directory = Path(directory).parent if directory else self.workdir
        probe = directory / "pg_test_fsync.out"
        self.progress(f"pg_test_fsync -s {self.options.fsync_seconds} in {directory}")
        try:
            proc = subprocess.run([self.binaries.tool("pg_test_fsync"), "-f", str(probe), "-s",
                                   str(self.options.fsync_seconds)], capture_output=True, text=True, timeout=300,
                                  check=False)
        finally:
            probe.unlink(missing_ok=True)
        return parse_fsync(proc.stdout), proc.stdout


_FDATASYNC = re.compile(r"^\s+fdatasync\s+([\d.]+) ops/sec", re.MULTILINE)


def parse_fsync(text: str) -> float | None:
    match = _FDATASYNC.search(text)
    return float(match.group(1)) if match else None
