"""The drills, trial by trial: for each configuration (the durable baseline and the manifests') and
each fault, the load runs, the fault strikes at a random moment, the server comes back, and
the damage is counted. Lifecycle (targets, the VM) lives in the targets and in vm.py; this
module only sequences trials."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from conformance import timeouts, workload
from conformance.bench.configs import Config, apply, configurations
from conformance.drills import verify
from conformance.drills.load import Load
from conformance.drills.names import CONFIGS, TRIAL_NAMES
from conformance.errors import EnvironmentProblem, one_line
from conformance.plan import SCHEMA_BREAKER_ROWS, SCHEMA_TABLES, figure

PROCESS_KILL, POWER_CUT, INIT_KILL, BACKUP_KILL = (TRIAL_NAMES[n] for n in (
    "process-kill", "power-cut", "init-kill", "backup-kill"))


@dataclass(frozen=True)
class Plan:
    kills: int          # process kills per configuration
    cuts: int           # power cuts per configuration
    load_seconds: tuple[float, float]  # the fault strikes at a random moment in this window of load
    seed: int = 12


QUICK = Plan(kills=5, cuts=3, load_seconds=(1.0, 4.0))
FULL = Plan(kills=20, cuts=8, load_seconds=(1.0, 8.0))


@dataclass
class Trial:
    config: str
    fault: str
    index: int
    acked: int = 0
    lost: int = 0
    lost_ms: float = 0.0
    recovered: bool = True
    recovery_s: float = 0.0
    clean_start_s: float = 0.0  # power cuts: the same boot without a cut (the VM's own boot time)
    corrupt: bool = False
    details: list[str] = field(default_factory=list)
    # The fault did not strike what it aimed at (a backup that had finished before the kill):
    # not counted, neither as survived nor as damage.
    missed: bool = False
    # The trial could not be judged (why); the drill reports it and fails.
    failed: str = ""
    # What the StatefulSet's init container did about postmaster.pid at the start after the
    # fault ("" when it found none): how often the recovery step was needed.
    lock_cleared: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def chosen(manifests, names: tuple[str, ...] = CONFIGS) -> list[Config]:
    """The configurations to drill, by name (bench.configs: durable, fsync=off,
    synchronous_commit=off, full_page_writes=off, plan-12.1, manifests); InputError for an unknown one."""
    from conformance.errors import InputError

    every = {c.name: c for c in configurations(manifests)}
    unknown = [n for n in names if n not in every]
    if unknown:
        raise InputError(f"--configs: no configuration {', '.join(unknown)}; choose from {', '.join(every)}")
    return [every[n] for n in names]


def _superuser(target, dbname: str | None = None):
    return lambda: psycopg.connect(**target.conninfo("superuser", dbname=dbname or "postgres"), autocommit=True)


def process_kills(target, config: Config, plan: Plan, rng: random.Random, pg_amcheck, progress) -> list[Trial]:
    """kill -9 of the server (of the container on docker) under load, then a start."""
    apply(_superuser(target), config)
    trials = []
    for i in range(plan.kills):
        trial = Trial(config.name, PROCESS_KILL, i + 1)
        load = Load(target.conninfo("app"), trial=f"k{config.name[0]}{i}")
        load.start()
        time.sleep(rng.uniform(*plan.load_seconds))  # a random moment of the load, not a wait for a state
        fault_at = time.monotonic()
        target.kill_server()
        acked = load.stop()
        start = time.monotonic()
        try:
            target.start_server(new_pod=False)  # the kubelet restarts the container: no init container
        except Exception as exc:  # the finding is that it did not come back
            trial.recovered, trial.details = False, [f"did not start: {one_line(exc, 200)}"]
            trials.append(trial)
            break
        trial.recovery_s = time.monotonic() - start
        trial.lock_cleared = cleared(target.init_said)
        _count(trial, acked, verify.inspect(target.conninfo("superuser"), acked, fault_at, pg_amcheck))
        progress(f"{config.name}: process kill {i + 1}/{plan.kills}: {trial.lost} of {trial.acked} acknowledged "
                 f"commits lost, back in {trial.recovery_s:.1f} s{', CORRUPT' if trial.corrupt else ''}")
        trials.append(trial)
    return trials


def cleared(said: list[str] | str) -> str:
    """The init container's word on removing a stale postmaster.pid, if it said one."""
    lines = said.splitlines() if isinstance(said, str) else said
    return next((line.split("removing ", 1)[1].strip() for line in lines if "removing a stale postmaster.pid" in line), "")


def _count(trial: Trial, acked, damage: verify.Damage) -> None:
    trial.acked, trial.lost, trial.lost_ms = len(acked), len(damage.lost), damage.lost_ms
    trial.corrupt = damage.corrupt
    if damage.error:
        trial.details.append(f"the database could not be read: {damage.error}")
    if damage.wrong_rows:
        trial.details.append(f"{len(damage.wrong_rows)} rows differ from what was written")
    trial.details += damage.amcheck


def init_kill(target, manifests, config: Config, progress) -> Trial:
    """The live check's drill (live-12.1-init-survives-a-kill) under this configuration."""
    from conformance.live.fault_checks import init_then_kill

    apply(_superuser(target), config)
    trial = Trial(config.name, INIT_KILL, 1)
    try:
        tables, rows, trial.recovery_s = init_then_kill(target, manifests)
    except RuntimeError as exc:  # the script failed before the kill
        trial.details.append(str(exc))
        trial.corrupt = True
        return trial
    want = len(SCHEMA_TABLES) + len(SCHEMA_BREAKER_ROWS)
    trial.acked, trial.lost = want, want - (tables + rows)
    if trial.lost:
        trial.details.append(f"{tables} tables and {rows} breaker rows after the kill")
    progress(f"{config.name}: kill right after the init: {trial.lost} of {want} objects and rows lost")
    return trial


BACKUP_ATTEMPTS = 3  # a kill that came too late (the dump had finished) is tried again


@dataclass(frozen=True)
class BackupKill:
    """What one kill during a backup showed."""
    hit: bool                  # pg_dump was seen dumping when the server was killed
    finished: bool             # the script still said it completed (exit 0)
    still_running: bool        # the script had not ended when the drill stopped waiting
    old_kept: bool             # the older dump is there, unchanged
    partial: tuple[str, ...]   # .partial files left
    dumps_after_failure: tuple[str, ...]  # dumps a failed run left


def judge_backup_kill(k: BackupKill) -> tuple[str, bool, list[str]]:
    """("missed" | "failed" | "judged", corrupt, details). A kill that did not hit a running
    pg_dump, or after which the script still completed, was no kill during a backup: missed,
    never "survived". A script that outlived the wait was never judged: failed."""
    if k.still_running:
        return "failed", False, [f"the backup script was still running {timeouts.SCRIPT} s after the kill"]
    if not k.hit or k.finished:
        why = "pg_dump was not seen dumping when the server was killed" if not k.hit else \
            "the backup completed before the kill reached it"
        return "missed", False, [why]
    details, corrupt = [], False
    if not k.old_kept:
        corrupt = True
        details.append("the older dump was deleted or changed")
    if k.partial:
        corrupt = True
        details.append(f"a partial file was kept: {list(k.partial)}")
    if k.dumps_after_failure:
        corrupt = True
        details.append(f"a failed run left a dump: {list(k.dumps_after_failure)}")
    return "judged", corrupt, details


def _dump_running(target) -> bool:
    """pg_dump has a session that is running a query (it is dumping, not yet done)."""
    with psycopg.connect(**target.conninfo("superuser"), autocommit=True) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                                 "AND state = 'active'").fetchone()[0])


def backup_kill(target, manifests, config: Config, rng: random.Random, progress) -> Trial:
    """The backup CronJob's script, the server killed while pg_dump dumps: the run must fail,
    keep the old dumps and leave no partial file. The kill is proven to hit a running pg_dump;
    a kill that came too late is tried again, and after BACKUP_ATTEMPTS reported as missed."""
    import threading

    from conformance.targets.waiting import wait_until

    apply(_superuser(target), config)
    trial = Trial(config.name, BACKUP_KILL, 1)
    folder = Path(target.backup_dir)
    folder.mkdir(parents=True, exist_ok=True)
    old = folder / f"{figure('database').expected}_20000101_000000.dump"
    old.write_bytes(b"an older dump")
    # Enough rows that the dump takes a moment to kill it in.
    bulk = f"{figure('schema').expected}.pc_drill_bulk"
    with psycopg.connect(**target.conninfo("superuser"), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {bulk} AS "
                     "SELECT g AS id, repeat(md5(g::text), 20) AS filler FROM generate_series(1, 200000) g")
        conn.execute(f"ALTER TABLE {bulk} OWNER TO {figure('account-admin').expected}")  # the backup's account
    outcome, proc = "missed", None
    try:
        for attempt in range(1, BACKUP_ATTEMPTS + 1):
            before = {p.name for p in folder.iterdir()}
            result: dict = {}
            runner = threading.Thread(target=lambda: result.update(proc=target.run_script(workload.backup(manifests))),
                                      daemon=True)
            runner.start()
            try:
                hit = wait_until(lambda: _dump_running(target), "pg_dump dumping", timeouts.SCRIPT, interval=0.02)
            except EnvironmentProblem:
                hit = False
            time.sleep(rng.uniform(0.0, 0.2))  # a random moment of the dump, not a wait for a state
            hit = hit and _dump_running(target)
            target.kill_server()
            runner.join(timeouts.SCRIPT)
            start = time.monotonic()
            target.start_server(new_pod=False)
            trial.recovery_s = time.monotonic() - start
            proc = result.get("proc")
            new = sorted({p.name for p in folder.iterdir()} - before)
            finished = proc is not None and proc.returncode == 0
            kill = BackupKill(hit=hit, finished=finished, still_running=runner.is_alive(),
                              old_kept=old.exists() and old.read_bytes() == b"an older dump",
                              partial=tuple(n for n in new if n.endswith(".partial")),
                              dumps_after_failure=tuple(n for n in new if not n.startswith(".") and not finished))
            outcome, trial.corrupt, trial.details = judge_backup_kill(kill)
            for name in new:
                (folder / name).unlink(missing_ok=True)
            if outcome != "missed":
                break
            progress(f"{config.name}: kill during a backup, attempt {attempt}: missed ({trial.details[0]})")
    finally:
        with psycopg.connect(**target.conninfo("superuser"), autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {bulk}")
        old.unlink(missing_ok=True)
    trial.missed = outcome == "missed"
    trial.failed = trial.details[0] if outcome == "failed" else ""
    progress(f"{config.name}: kill during a backup: " + (
        f"missed in {BACKUP_ATTEMPTS} attempts" if trial.missed else trial.failed or
        f"exit {proc.returncode if proc else '?'}, "
        f"{'old dumps kept, no partial file' if not trial.corrupt else '; '.join(trial.details)}"))
    return trial
