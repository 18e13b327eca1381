"""A whole drill: the process faults on a target (native or docker) and the power cuts in the
VM, for the durable baseline and the plan's configuration, side by side."""

from __future__ import annotations

import platform
import random
import time
from dataclasses import dataclass, field

import psycopg

from conformance import targets
from conformance.bench.configs import SETTINGS
from conformance.drills import runner
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


def run(manifests, target_name: str, plan: Plan, power: bool = True, progress=lambda m: None) -> Drill:
    from conformance.live.runner import apply_schema

    drill = Drill(target_name, plan)
    start = time.monotonic()
    rng = random.Random(plan.seed)
    binaries = locate(progress)
    pg_amcheck = binaries.bindir / "pg_amcheck"
    drill.postgres = binaries.version
    configs = runner.chosen(manifests)
    reason = targets.unavailable_reason(target_name)
    if reason:
        raise EnvironmentProblem(f"the {target_name} target cannot run here: {reason}")
    with targets.create(target_name, manifests, progress=progress, keep=False) as target:
        apply_schema(target)
        drill.notes += target.notes
        for config in configs:
            drill.trials += runner.process_kills(target, config, plan, rng, pg_amcheck, progress)
            drill.trials.append(runner.init_kill(target, manifests, config, progress))
            drill.trials.append(runner.backup_kill(target, manifests, config, rng, progress))
        with psycopg.connect(**target.conninfo("superuser", dbname="postgres"), autocommit=True) as conn:
            for name in SETTINGS:
                conn.execute(f"ALTER SYSTEM RESET {name}")
    if power:
        from conformance.drills import power as power_drill, vm

        missing = vm.ensure_qemu(progress) or vm.unavailable_reason()
        if missing:
            drill.notes.append(f"power cuts not drilled: {missing}")
        else:
            for config in configs:
                drill.trials += power_drill.power_cuts(manifests, config, plan, rng, pg_amcheck, progress)
    else:
        drill.notes.append("power cuts not drilled: --no-power")
    drill.seconds = time.monotonic() - start
    return drill
