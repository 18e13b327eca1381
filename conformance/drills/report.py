"""The drill's three files, like the bench's: drills-<date>.md for people, .json with every
trial, .png (commits lost and time to come back, per configuration and fault)."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from conformance.drills.campaign import Drill
from conformance.drills.runner import BACKUP_KILL, INIT_KILL, POWER_CUT, PROCESS_KILL
from conformance.plan import AVAILABILITY

FAULTS = (PROCESS_KILL, POWER_CUT, INIT_KILL, BACKUP_KILL)
MONTH_HOURS = 730


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


def _med(values):
    return statistics.median(values) if values else None


def rows(drill: Drill) -> list[Row]:
    out = []
    for fault in FAULTS:
        for config in dict.fromkeys(t.config for t in drill.trials):
            every = [t for t in drill.trials if t.fault == fault and t.config == config]
            if not every:
                continue
            ts = [t for t in every if not t.missed and not t.failed]
            back = [t for t in ts if t.recovered]
            out.append(Row(config, fault, len(ts), len(back), _med([t.recovery_s for t in back]),
                           max((t.recovery_s for t in back), default=None), _med([t.lost for t in back]),
                           max((t.lost for t in back), default=None), _med([t.lost_ms for t in back]),
                           max((t.lost_ms for t in back), default=None), sum(t.acked for t in ts),
                           sum(t.corrupt for t in ts),
                           tuple(dict.fromkeys(d for t in ts if not t.recovered for d in t.details)),
                           sum(t.missed for t in every), tuple(t.failed for t in every if t.failed)))
    return out


def _f(v, digits=0, unit=""):
    return "–" if v is None else f"{v:,.{digits}f}{unit}"


def meaning(table: list[Row]) -> list[str]:
    """What the figures mean for plan 1.2's 95% availability (36.5 hours down a month)."""
    availability = AVAILABILITY
    budget = (1 - availability) * MONTH_HOURS
    out = [f"Plan 1.2 asks for {availability:.0%} availability: {budget:.1f} hours down a month."]
    for r in table:
        if r.config != "plan" or r.fault not in (PROCESS_KILL, POWER_CUT):
            continue
        if r.came_back == r.trials:
            out.append(f"- {r.fault}: the server came back by itself every time, in {_f(r.recovery_max_s, 1)} s at "
                       f"most; the cost is data ({_f(r.lost_max)} acknowledged commits at most, "
                       f"{_f(r.lost_ms_max)} ms of them), not availability.")
        else:
            out.append(f"- {r.fault}: the server did not come back by itself after {r.trials - r.came_back} of "
                       f"{r.trials} ({'; '.join(r.why_not_back)[:200]}): a person must act, so each such fault "
                       f"costs hours, and a few a month use up the {budget:.0f}-hour budget. When it came back, "
                       f"{_f(r.lost_median)} acknowledged commits were gone (median; {_f(r.lost_ms_max)} ms of "
                       "them at most): everything the node had not written back.")
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
             "- **plan**: the ConfigMap's postgresql.conf (plan 12.1: all three off).",
             "- **process kill**: SIGKILL of the server (of the whole container on docker); the node and its "
             "page cache stay.",
             "- **power cut**: the server in a virtual machine whose power is cut (qemu killed): what the "
             "guest had not written back to its disk is gone.",
             "- load: the service's write path (live/statements.py), one request per transaction, 4 clients; "
             "a commit counts as acknowledged when it returned to the client.",
             "- integrity: every surviving row compared with what was written, and `pg_amcheck "
             "--heapallindexed` over every table and index; for the kill during a backup, damage means an "
             "older dump lost or a partial file kept.", "",
             "| configuration | fault | trials | came back by itself | back in (median / max) | "
             "acknowledged commits lost (median / max) | ms of commits lost (median / max) | corruption found |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table:
        counted = r.fault != BACKUP_KILL  # a backup acknowledges no commits: its damage is to the dumps
        lost = f"{_f(r.lost_median)} / {_f(r.lost_max)} (of {r.acked_total})" if counted else "–"
        ms = f"{_f(r.lost_ms_median, 1)} / {_f(r.lost_ms_max, 1)}" if counted else "–"
        lines.append(f"| {r.config} | {r.fault} | {r.trials} | {r.came_back} of {r.trials} | "
                     f"{_f(r.recovery_median_s, 1, ' s')} / {_f(r.recovery_max_s, 1, ' s')} | {lost} | {ms} | "
                     f"{r.corrupt} |")
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
    lines += ["", "## What it means", "", *meaning(table)]
    clean = [t.clean_start_s for t in drill.trials if t.fault == POWER_CUT and t.clean_start_s]
    if clean:
        lines += ["", f"Power-cut times include the virtual machine's boot under software emulation (a boot "
                  f"without a cut: {_f(_med(clean), 1, ' s')} median); compare configurations, not absolute seconds."]
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
            "summary": [asdict(r) for r in rows(drill)], "trials": [t.as_dict() for t in drill.trials]}
    js = base.with_suffix(".json")
    js.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return [p for p in (md, js, png) if p]
