"""A whole drill: the process faults on a target (native or docker) and the power cuts in the
VM, for the durable baseline and the manifests' configuration, side by side."""

from __future__ import annotations

import platform
import random
import time
from dataclasses import dataclass, field

import psycopg

from conformance import targets
from conformance.bench.configs import SETTINGS
from conformance.drills import pidfile, runner
from conformance.drills.availability import Readiness, readiness
from conformance.drills.names import FAULTS
from conformance.drills.runner import Plan, Trial
from conformance.errors import EnvironmentProblem
from conformance.pg.binaries import locate


@dataclass
class Drill:
    target: str
    plan: Plan
    trials: list[Trial] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    machine: str = field(default_factory=lambda: f"{platform.node()}, {platform.machine()}, "
                                                 f"{__import__('os').cpu_count()} cores")
    postgres: str = ""
    readiness: Readiness = field(default_factory=Readiness)
    # The stale postmaster.pid drills (pidfile.py), and whether a second server was refused.
    pidfile: list[pidfile.PidTrial] = field(default_factory=list)
    second_server: tuple[bool, str] | None = None

    @property
    def pidfile_failed(self) -> int:
        return sum(not t.came_back for t in self.pidfile) + (self.second_server is not None
                                                              and not self.second_server[0])


def run(manifests, target_name: str, plan: Plan, power: bool = True, progress=lambda m: None,
        faults: tuple[str, ...] = FAULTS, pg_major: int | None = None,
        configs: tuple[str, ...] = runner.CONFIGS) -> Drill:
    """pg_major: the major the manifests run (upgrade/pgN); the plan's when None."""
    from conformance.plan import targeting

    drill = Drill(target_name, plan, readiness=readiness(manifests))
    start = time.monotonic()
    rng = random.Random(plan.seed)
    binaries = locate(progress, pg_major)
    pg_amcheck = binaries.bindir / "pg_amcheck"
    drill.postgres = binaries.version
    chosen = runner.chosen(manifests, configs)
    # The target is started (and must be able to run) only for faults that strike it.
    process_faults = [f for f in faults if f != "power-cut" and not (f == "process-kill" and not plan.kills)]
    reason = targets.unavailable_reason(target_name) if process_faults else None
    if reason:
        raise EnvironmentProblem(f"the {target_name} target cannot run here: {reason}")
    with targeting(pg_major):
        if process_faults:
            _process_faults(drill, manifests, target_name, chosen, process_faults, rng, pg_amcheck, progress,
                            pg_major)
        if power and "power-cut" in faults:
            _power_cuts(drill, manifests, chosen, rng, pg_amcheck, progress)
        elif "power-cut" in faults:
            drill.notes.append("power cuts not drilled: --no-power")
    drill.seconds = time.monotonic() - start
    return drill


def _process_faults(drill, manifests, target_name, configs, faults, rng, pg_amcheck, progress, pg_major) -> None:
    from conformance.live.runner import apply_schema

    plan = drill.plan
    with targets.create(target_name, manifests, progress=progress, keep=False, pg_major=pg_major) as target:
        apply_schema(target)
        drill.notes += target.notes
        for config in configs:
            if "process-kill" in faults:
                drill.trials += runner.process_kills(target, config, plan, rng, pg_amcheck, progress)
            if "init-kill" in faults:
                drill.trials.append(runner.init_kill(target, manifests, config, progress))
            if "backup-kill" in faults:
                drill.trials.append(runner.backup_kill(target, manifests, config, rng, progress))
        with psycopg.connect(**target.conninfo("superuser", dbname="postgres"), autocommit=True) as conn:
            for name in SETTINGS:
                conn.execute(f"ALTER SYSTEM RESET {name}")
        if "pid-file" in faults:
            target.stop_server()
            target.start_server()  # the settings reset above, in effect
            drill.pidfile = pidfile.drill(target, progress)
            drill.second_server = pidfile.second_server_refused(target)


def _power_cuts(drill, manifests, configs, rng, pg_amcheck, progress) -> None:
    if drill.plan.cuts:
        from conformance.drills import power as power_drill
        from conformance.drills import vm

        missing = vm.ensure_qemu(progress) or vm.unavailable_reason()
        if missing:
            drill.notes.append(f"power cuts not drilled: {missing}")
        else:
            for config in configs:
                drill.trials += power_drill.power_cuts(manifests, config, drill.plan, rng, pg_amcheck, progress)
