"""The drill's three files, like the bench's: drills-<date>.md for people, .json with every
trial, .png (commits lost and time to come back, per configuration and fault)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from conformance.bench.configs import MANIFESTS, PLAN_AS_WRITTEN
from conformance.bench.stats import median
from conformance.drills import availability
from conformance.drills.bounds import Rate
from conformance.drills.campaign import Drill
from conformance.drills.runner import BACKUP_KILL, INIT_KILL, POWER_CUT, PROCESS_KILL
from conformance.plan import AVAILABILITY

FAULTS = (PROCESS_KILL, POWER_CUT, INIT_KILL, BACKUP_KILL)


@dataclass(frozen=True)
class Row:
    config: str
    fault: str
    trials: int
    came_back: int
    recovery_median_s: float | None
    recovery_max_s: float | None
    lost_median: float | None
    lost_max: int | None
    lost_ms_median: float | None
    lost_ms_max: float | None
    acked_total: int
    corrupt: int
    why_not_back: tuple[str, ...]
    missed: int = 0   # faults that did not strike what they aimed at: not counted above
    failed: tuple[str, ...] = ()  # trials that could not be judged, with why
    lock_cleared: int = 0  # trials after which the init container removed a stale postmaster.pid


def rows(drill: Drill) -> list[Row]:
    out = []
    for fault in FAULTS:
        for config in dict.fromkeys(t.config for t in drill.trials):
            every = [t for t in drill.trials if t.fault == fault and t.config == config]
            if not every:
                continue
            ts = [t for t in every if not t.missed and not t.failed]
            back = [t for t in ts if t.recovered]
            out.append(Row(config, fault, len(ts), len(back), median([t.recovery_s for t in back]),
                           max((t.recovery_s for t in back), default=None), median([t.lost for t in back]),
                           max((t.lost for t in back), default=None), median([t.lost_ms for t in back]),
                           max((t.lost_ms for t in back), default=None), sum(t.acked for t in ts),
                           sum(t.corrupt for t in ts),
                           tuple(dict.fromkeys(d for t in ts if not t.recovered for d in t.details)),
                           sum(t.missed for t in every), tuple(t.failed for t in every if t.failed),
                           sum(bool(t.lock_cleared) for t in ts)))
    return out


def _f(v, digits=0, unit=""):
    return "–" if v is None else f"{v:,.{digits}f}{unit}"


def refused_alone(cleared: str) -> bool:
    """Whether PostgreSQL itself would have refused the lock the init container removed: an
    empty one, or one naming a live (or unreaped) process other than PID 1. A PID that does not
    exist it clears itself; PID 1 is, in a container, the new server itself (the entrypoint
    execs it), which it ignores, and on a machine init, which it may not signal."""
    import re

    if not cleared or "does not exist" in cleared:
        return False
    if "empty or unreadable" in cleared:
        return True
    pid = re.search(r"PID (\d+)", cleared)
    return bool(pid) and pid.group(1) != "1"


def _reason(cleared: str) -> str:
    """"a stale postmaster.pid (PID 70 is kworker/0:1, ...): left by a crash" -> "PID N is
    kworker/N:N, ...": the init container's reason, its numbers folded so that like counts with like."""
    import re

    found = re.search(r"postmaster\.pid \((.*)\)", cleared)
    return re.sub(r"\d+", "N", found.group(1) if found else cleared)


def rates(r: Row) -> list[Rate]:
    """A row's rates as bad outcomes, each with its upper bound: not back by itself, corruption."""
    return [Rate("did not come back by itself", r.trials - r.came_back, r.trials),
            Rate("corruption found", r.corrupt, r.trials)]


def _bound(rate: Rate) -> str:
    return f"{rate.k} of {rate.n}, at most {rate.bound:.0%}" if rate.n else "–"


def ready_rows(drill: Drill, table: list[Row]) -> list[str]:
    """When the pod would be Ready after each fault: the server answering (measured; for a power
    cut, what the crash added to a clean boot: the node's own boot is an assumption below),
    then the kubelet's next readiness probe."""
    probe = drill.readiness
    out = [f"Readiness probe (from the manifests): first after {probe.initial_delay:g} s, then every "
           f"{probe.period:g} s, {probe.success} success to be Ready.", "",
           "| configuration | fault | server answering (max) | pod Ready after (max) |", "|---|---|---|---|"]
    for r in table:
        if r.fault not in (PROCESS_KILL, POWER_CUT) or r.recovery_max_s is None:
            continue
        answering = _answering_max(drill, r)
        out.append(f"| {r.config} | {r.fault} | {answering:.1f} s | {probe.ready_after(answering):.0f} s |")
    return out


def _answering_max(drill: Drill, r: Row) -> float:
    ts = [t for t in drill.trials if t.config == r.config and t.fault == r.fault and t.recovered
          and not t.missed and not t.failed]
    if r.fault == POWER_CUT:  # the guest's boot under emulation is not the pod's: the crash's share only
        return max((max(0.0, t.recovery_s - t.clean_start_s) for t in ts), default=0.0)
    return max((t.recovery_s for t in ts), default=0.0)


def meaning(drill: Drill, table: list[Row]) -> list[str]:
    """What the figures mean for plan 1.2's 95% availability (36.5 hours down a month)."""
    out = [f"Plan 1.2 asks for {AVAILABILITY:.0%} availability: {availability.BUDGET_HOURS:.1f} hours down a month."]
    for r in table:
        if r.config != MANIFESTS or r.fault not in (PROCESS_KILL, POWER_CUT) or not r.trials:
            continue
        not_back = rates(r)[0]
        ready = drill.readiness.ready_after(_answering_max(drill, r))
        if r.came_back == r.trials:
            out.append(f"- {r.fault}: the server came back by itself in every one of {r.trials} trials (a rate of "
                       f"not coming back of at most {not_back.bound:.0%} at 95% confidence); the pod is Ready "
                       f"{ready:.0f} s after its container starts. The cost is data ({_f(r.lost_max)} acknowledged "
                       f"commits at most, {_f(r.lost_ms_max)} ms of them), not availability.")
        else:
            out.append(f"- {r.fault}: the server did not come back by itself after {r.trials - r.came_back} of "
                       f"{r.trials} ({'; '.join(r.why_not_back)[:200]}): a person must act, and each such fault "
                       f"costs hours of the {availability.BUDGET_HOURS:.1f}-hour budget.")
        if r.fault == POWER_CUT:
            seen = not_back.k / not_back.n
            costs = [availability.monthly(c, ready, seen) for c in availability.CRASHES_A_MONTH]
            worst = [availability.monthly(c, ready, not_back.bound) for c in availability.CRASHES_A_MONTH]
            out.append("  Node crashes a month, as measured: " + "; ".join(c.text() for c in costs) + ".")
            out.append("  At the 95% bound of not coming back: " + "; ".join(c.text() for c in worst) + ".")
    out.append(f"- {availability.assumptions()}")
    return out


def sample_warnings(table: list[Row]) -> list[str]:
    """Where a sample is too small to back "it does not happen" (the bound of none seen is over
    10%): one line per configuration and fault."""
    from conformance.drills.bounds import CLAIM_BOUND, trials_for

    out = []
    for r in table:
        if r.fault not in (PROCESS_KILL, POWER_CUT):
            continue
        small = [rate for rate in rates(r) if rate.k == 0 and not rate.enough]
        if small:
            out.append(f"- {r.config}, {r.fault}: none of {r.trials} trials " + " and none ".join(
                f"{rate.what}" for rate in small) + f", yet each rate may be up to {small[0].bound:.0%}; "
                f"{trials_for(CLAIM_BOUND)} trials with none would bound it under {CLAIM_BOUND:.0%}.")
    return out


def pidfile_section(drill: Drill) -> list[str]:
    if not drill.pidfile and drill.second_server is None:
        return []
    out = ["", "## A postmaster.pid left by a crash", "",
           "The server stopped, postmaster.pid left as users of PostgreSQL images report it after node failures, "
           "and the server started the way the manifests start it (the StatefulSet's init container first).", "",
           "| postmaster.pid | held | came back by itself | in |", "|---|---|---|---|"]
    for t in drill.pidfile:
        out.append(f"| {t.case} | {t.wrote} | {'yes' if t.came_back else 'NO: ' + '; '.join(t.details)[:200]} | "
                   f"{t.seconds:.1f} s |")
    if drill.second_server is not None:
        ok, said = drill.second_server
        out += ["", f"A second server on the same data directory while the first ran: "
                    f"{'refused, as it must be' if ok else 'NOT refused'} ({said})."]
    return out


def markdown(drill: Drill, stamp: str, png_name: str) -> str:
    table = rows(drill)
    p = drill.plan
    lines = [f"# Fault drills ({stamp})", "",
             f"Target `{drill.target}`, PostgreSQL {drill.postgres}, on {drill.machine}; "
             f"{p.kills} process kills and {p.cuts} power cuts per configuration, each at a random moment "
             f"{p.load_seconds[0]:g}-{p.load_seconds[1]:g} s into the load (seed {p.seed}); "
             f"{drill.seconds:.0f} s in all.", "",
             "- **durable**: fsync, synchronous_commit and full_page_writes on (PostgreSQL's defaults).",
             *([f"- **{MANIFESTS}**: the ConfigMap's postgresql.conf as the manifests ship it (where it differs "
                "from plan 12.1, and why: docs/deviations.md)."]
               if any(t.config == MANIFESTS for t in drill.trials) else []),
             *([f"- **{PLAN_AS_WRITTEN}**: plan 12.1 as written, all three off."]
               if any(t.config == PLAN_AS_WRITTEN for t in drill.trials) else []),
             *([f"- **{c}**: that setting off alone, the other two on."
                for c in dict.fromkeys(t.config for t in drill.trials) if "=" in c]),
             "- **process kill**: SIGKILL of the server (of the whole container on docker); the node and its "
             "page cache stay.",
             "- **power cut**: the server in a virtual machine whose power is cut (qemu killed): what the "
             "guest had not written back to its disk is gone.",
             "- load: the service's write path (live/statements.py), one request per transaction, 4 clients; "
             "a commit counts as acknowledged when it returned to the client.",
             "- integrity: every surviving row compared with what was written, and `pg_amcheck "
             "--heapallindexed` over every table and index; a server that refuses its own data at start "
             "(PANIC) counts as corruption too; for the kill during a backup, damage means an "
             "older dump lost or a partial file kept.",
             "- bounds: for each bad outcome, the count and the most its rate can be at 95% confidence "
             "(exact binomial, Clopper-Pearson): 0 of 30 is at most 10%, 0 of 3 at most 63%.", "",
             "| configuration | fault | trials | came back by itself | did not (95% bound) | back in (median / max) | "
             "acknowledged commits lost (median / max) | ms of commits lost (median / max) | corruption found "
             "(95% bound) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        counted = r.fault != BACKUP_KILL  # a backup acknowledges no commits: its damage is to the dumps
        lost = f"{_f(r.lost_median)} / {_f(r.lost_max)} (of {r.acked_total})" if counted else "–"
        ms = f"{_f(r.lost_ms_median, 1)} / {_f(r.lost_ms_max, 1)}" if counted else "–"
        not_back, corrupt = rates(r)
        lines.append(f"| {r.config} | {r.fault} | {r.trials} | {r.came_back} of {r.trials} | {_bound(not_back)} | "
                     f"{_f(r.recovery_median_s, 1, ' s')} / {_f(r.recovery_max_s, 1, ' s')} | {lost} | {ms} | "
                     f"{_bound(corrupt)} |")
    uncounted = [r for r in table if r.missed or r.failed]
    if uncounted:
        lines += ["", "Not counted above:", ""]
        lines += [f"- {r.config}, {r.fault}: " + "; ".join(
            ([f"{r.missed} missed (the fault did not strike what it aimed at)"] if r.missed else [])
            + [f"FAILED, not judged: {why}" for why in r.failed]) for r in uncounted]
    down = [r for r in table if r.why_not_back]
    if down:
        lines += ["", "Why the server did not come back by itself:", ""]
        lines += [f"- {r.config}, {r.fault}: {'; '.join(r.why_not_back)}" for r in down]
    cleared = [r for r in table if r.lock_cleared]
    if cleared:
        lines += ["", "The StatefulSet's init container removed a stale postmaster.pid before the server started. "
                  "One naming a PID that does not exist PostgreSQL clears itself; an empty one, or one naming a "
                  "live process, it refuses, and the pod crash-loops until a person acts:", ""]
        for r in cleared:
            why = sorted({_reason(t.lock_cleared) for t in drill.trials
                          if t.config == r.config and t.fault == r.fault and t.lock_cleared})
            needed = sum(1 for t in drill.trials if t.config == r.config and t.fault == r.fault
                         and refused_alone(t.lock_cleared))
            lines.append(f"- {r.config}, {r.fault}: after {r.lock_cleared} of {r.trials} ({'; '.join(why)}); "
                         f"PostgreSQL alone would have refused to start after {needed} of them")
    small = sample_warnings(table)
    if small:
        lines += ["", "Samples too small to back a claim:", "", *small]
    lines += pidfile_section(drill)
    lines += ["", "## Time until the pod is Ready", "", *ready_rows(drill, table)]
    lines += ["", "## What it means", "", *meaning(drill, table)]
    clean = [t.clean_start_s for t in drill.trials if t.fault == POWER_CUT and t.clean_start_s]
    if clean:
        lines += ["", f"Power-cut times include the virtual machine's boot under software emulation (a boot "
                  f"without a cut: {_f(median(clean), 1, ' s')} median); compare configurations, not absolute seconds."]
    if drill.notes:
        lines += ["", *[f"> {n}" for n in drill.notes]]
    lines += ["", f"![commits lost and recovery]({png_name})", ""]
    return "\n".join(lines)


def chart(drill: Drill, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    table = [r for r in rows(drill) if r.fault in (PROCESS_KILL, POWER_CUT)]
    labels = [f"{r.config}\n{r.fault}" for r in table]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.bar(labels, [r.lost_max or 0 for r in table], color="tab:red", label="max")
    ax1.bar(labels, [r.lost_median or 0 for r in table], color="tab:orange", label="median")
    ax1.set_title("acknowledged commits lost per fault")
    ax1.legend()
    ax2.bar(labels, [r.recovery_max_s or 0 for r in table], color="tab:blue", label="max")
    ax2.bar(labels, [r.recovery_median_s or 0 for r in table], color="tab:cyan", label="median")
    ax2.set_title("seconds until the server answered again")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(drill: Drill, out_dir: Path, now: datetime | None = None) -> list[Path]:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d-%H%M")
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"drills-{stamp}"
    png = chart(drill, base.with_suffix(".png"))
    md = base.with_suffix(".md")
    md.write_text(markdown(drill, stamp, png.name if png else "(matplotlib not installed)"), encoding="utf-8")
    data = {"date": stamp, "target": drill.target, "postgres": drill.postgres, "machine": drill.machine,
            "seconds": drill.seconds, "plan": asdict(drill.plan), "notes": drill.notes,
            "summary": [{**asdict(r), "bounds": {rate.what: {"k": rate.k, "n": rate.n, "upper_95": rate.bound}
                                                 for rate in rates(r)}} for r in rows(drill)],
            "trials": [t.as_dict() for t in drill.trials],
            "readiness": asdict(drill.readiness), "pidfile": [asdict(t) for t in drill.pidfile],
            "second_server": ({"refused": drill.second_server[0], "said": drill.second_server[1]}
                              if drill.second_server else None)}
    js = base.with_suffix(".json")
    js.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return [p for p in (md, js, png) if p]
