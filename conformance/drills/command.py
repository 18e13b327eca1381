"""`python -m conformance drills`: what the command line asked, the drill run, the report
written, the exit code. The CLI parses; this decides."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conformance.errors import InputError, NothingChecked


def parse_faults(text: str) -> tuple[str, ...]:
    from conformance.drills.campaign import FAULTS

    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FAULTS]
    if unknown or not names:
        raise InputError(f"--faults {text!r}: {'unknown ' + ', '.join(unknown) if unknown else 'none named'}; "
                         f"choose from {', '.join(FAULTS)}")
    return names


def plan(quick: bool, kills: int | None, cuts: int | None):
    from conformance.drills import runner

    chosen = runner.QUICK if quick else runner.FULL
    return replace(chosen, kills=chosen.kills if kills is None else kills, cuts=chosen.cuts if cuts is None else cuts)


def run(manifests_dir: Path, target: str, *, quick: bool, kills: int | None, cuts: int | None,
        faults: tuple[str, ...], power: bool, pg_major: int | None, output: Path, allow_skip: bool,
        progress, configs: tuple[str, ...] | None = None) -> int:
    from conformance import manifests, targets, workload
    from conformance.drills import campaign, report, runner, vm
    from conformance.rehearsal import manifests_dir as major_manifests

    folder = major_manifests(manifests_dir, pg_major) if pg_major else manifests_dir
    loaded = manifests.load(folder)
    found = workload.image_major(loaded)
    if pg_major is not None and found is not None and found != pg_major:
        raise InputError(f"{folder}: its StatefulSet runs PostgreSQL {found}, not {pg_major}")
    chosen = plan(quick, kills, cuts)
    configs = configs or runner.CONFIGS
    runner.chosen(loaded, configs)  # an unknown name is exit 2 before anything runs
    drilled = [f for f in faults if not (f == "power-cut" and (not power or not chosen.cuts))
               and not (f == "process-kill" and not chosen.kills)]
    if not drilled:
        raise NothingChecked("no fault left to drill (--faults, --no-power, --kills 0 and --cuts 0 leave none)")
    reason = targets.unavailable_reason(target) if any(f != "power-cut" for f in drilled) else None
    if reason:
        if not allow_skip:
            raise NothingChecked(f"{reason}; nothing was checked (--allow-skip to report it as skipped)")
        print(f"skipped: {reason}")
        return 0
    if "power-cut" in drilled and not allow_skip:
        missing = vm.ensure_qemu(progress) or vm.unavailable_reason()
        if missing:
            raise NothingChecked(f"the power cuts need a virtual machine: {missing}; --no-power drills without "
                                 "them, --allow-skip notes them as not drilled")
    drill = campaign.run(loaded, target, chosen, power=power, progress=progress, faults=tuple(faults),
                         pg_major=pg_major, configs=tuple(configs))
    paths = report.write(drill, output)
    for note in drill.notes:
        print(f"note: {note}")
    print(f"drills: {len(drill.trials) + len(drill.pidfile)} trials in {drill.seconds:.0f} s; "
          f"report: {', '.join(map(str, paths))}")
    failed = [t for t in drill.trials if t.failed]
    for t in failed:
        print(f"error: {t.config}, {t.fault} {t.index}: not judged: {t.failed}")
    down = [t for t in drill.trials if not t.recovered and not t.failed]
    for t in down:
        print(f"error: {t.config}, {t.fault} {t.index}: the server did not come back by itself: "
              f"{'; '.join(t.details)[:200]}")
    if drill.pidfile_failed:
        print(f"error: {drill.pidfile_failed} postmaster.pid drills failed (see the report)")
    return 1 if failed or down or drill.pidfile_failed else 0
