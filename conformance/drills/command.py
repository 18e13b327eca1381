"""`python -m conformance drills`: what the command line asked, the drill run, the report
written, the exit code. The CLI parses; this decides."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from conformance.drills.names import FAULTS, TRIAL_NAMES
from conformance.errors import InputError, NothingChecked
from conformance.workload import major_beyond_plan


def _names(option: str, text: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if allowed is not None and n not in allowed]
    if unknown or not names:
        raise InputError(f"{option} {text!r}: {'unknown ' + ', '.join(unknown) if unknown else 'none named'}"
                         + (f"; choose from {', '.join(allowed)}" if allowed else ""))
    return names


def parse_faults(text: str) -> tuple[str, ...]:
    return _names("--faults", text, FAULTS)


def parse_configs(text: str) -> tuple[str, ...]:
    """Names only: which exist depends on the manifests (runner.chosen says, before anything runs)."""
    return _names("--configs", text)


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
    # --manifests upgrade/pg18 alone: the major the manifests run, for every fault alike.
    pg_major = pg_major or major_beyond_plan(found)
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
    code, lines = verdict(drill, drilled, allow_skip, accepted(runner.chosen(loaded, configs)))
    for line in lines:
        print(line)
    return code


@dataclass(frozen=True)
class Accepted:
    """The damage a configuration takes on knowingly, by configuration name: losing the last
    commits to a crash where synchronous_commit is off; corruption after a power cut where fsync
    or full_page_writes is off (the risk PostgreSQL documents for them). Anything else is a
    defect."""
    lost: frozenset[str] = frozenset()
    corrupt: frozenset[str] = frozenset()


def accepted(configs) -> Accepted:
    return Accepted(frozenset(c.name for c in configs if c.values.get("synchronous_commit") == "off"),
                    frozenset(c.name for c in configs
                              if c.values.get("fsync") == "off" or c.values.get("full_page_writes") == "off"))


def _defect(t, taken: Accepted) -> bool:
    """Damage no configuration accepts: a killed backup costing a dump or leaving one
    half-written, a loss after the init (it commits durably), or a loss or corruption beyond
    what the trial's configuration takes on."""
    if not (t.lost or t.corrupt):
        return False
    if t.fault in (TRIAL_NAMES["backup-kill"], TRIAL_NAMES["init-kill"]):
        return True
    return bool((t.lost and t.config not in taken.lost)
                or (t.corrupt and (t.config not in taken.corrupt or t.fault != TRIAL_NAMES["power-cut"])))


def verdict(drill, drilled: list[str], allow_skip: bool = False,
            taken: Accepted = Accepted()) -> tuple[int, list[str]]:
    """The exit code and its reasons. 1: a trial could not be judged, a server did not come back
    by itself, a pid-file drill failed, a fault asked for had no judged trial, or damage beyond
    what its configuration takes on (_defect; `taken`, from accepted()). NothingChecked when no
    trial at all was judged."""
    judged = [t for t in drill.trials if not t.failed and not t.missed]
    if not judged and not drill.pidfile:
        raise NothingChecked("the drill judged no trial (every one missed or could not be judged)")
    lines = []
    for t in drill.trials:
        if t.failed:
            lines.append(f"error: {t.config}, {t.fault} {t.index}: not judged: {t.failed}")
    for t in judged:
        if not t.recovered:
            lines.append(f"error: {t.config}, {t.fault} {t.index}: the server did not come back by itself: "
                         f"{'; '.join(t.details)[:200]}")
        elif _defect(t, taken):
            lines.append(f"error: {t.config}, {t.fault} {t.index}: damage no configuration accepts "
                         f"({t.lost} lost{', corrupt' if t.corrupt else ''}): {'; '.join(t.details)[:200]}")
    for fault in drilled:
        name = TRIAL_NAMES.get(fault)
        if name and not any(t.fault == name for t in judged):
            why = f"{fault}: no trial judged (missed, not judged, or not drilled: see the report)"
            lines.append(f"skipped: {why}" if allow_skip else f"error: {why}")
    if drill.pidfile_failed:
        lines.append(f"error: {drill.pidfile_failed} postmaster.pid drills failed (see the report)")
    return (1 if any(line.startswith("error:") for line in lines) else 0), lines
