"""The clone benchmark's report, like the bench's: clones-<date>.md for people, .json with every
figure; from pytest-benchmark's JSON of tests/bench/test_clone_speed.py.

    python -m localenv.clonebench.report reports/clones-benchmark.json [--output reports]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

GOAL_MEDIAN_MS = 5.0
GOAL_RATIO = 5.0
ORDER = ("pool", "clone", "pytest-postgresql", "initdb")


@dataclass(frozen=True)
class Row:
    way: str
    label: str
    tests: int
    median_ms: float
    p95_ms: float
    max_ms: float
    waited: int = 0        # tests that waited more than a millisecond
    pool: int | None = None  # clones kept ready (a), made before the first test


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} µs" if value < 1 else f"{value:.1f} ms"


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def read(path: Path) -> tuple[list[Row], list[dict], dict]:
    data = json.loads(path.read_text())
    rows, suites = [], []
    files = {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info") or {}
        if b.get("group") == "per-test":
            times = info.get("times_s") or []
            if not times:
                continue
            way = b["params"]["way"]
            rows.append(Row(way, info.get("way", way), len(times), statistics.median(times) * 1000,
                            _p95(times) * 1000, max(times) * 1000, sum(1 for x in times if x > 0.001),
                            info.get("pool")))
        elif b.get("group") == "machine":
            files[info.get("where")] = b["stats"]["median"] * 1000
        elif b.get("group") == "suite":
            suites.append({"kind": info.get("kind"), "workers": info.get("workers"), "tests": info.get("tests"),
                           "seconds": b["stats"]["median"]})
    rows.sort(key=lambda r: ORDER.index(r.way) if r.way in ORDER else 99)
    return rows, suites, {**(data.get("machine_info") or {}), "files_ms": files}


def markdown(rows: list[Row], suites: list[dict], machine: dict, stamp: str, server: str) -> list[str]:
    by = {r.way: r for r in rows}
    lines = [f"# A database per test: clone benchmark of {stamp}", "",
             f"{server}; {machine.get('cpu', {}).get('count', '?')} CPUs, Python {machine.get('python_version', '?')}. "
             "Each way runs its tests one after another in one process; between two, each test's body "
             "(one request of the service's write path and a count) and its teardown run off the clock. "
             "The figure is what a test waits for: from asking for a database to holding an open connection "
             "to it.", "",
             "| way | tests | median | p95 | max | tests that waited over 1 ms |", "|---|---|---|---|---|---|"]
    for r in rows:
        label = r.label + (f" ({r.pool} kept ready)" if r.pool else "")
        lines.append(f"| {label} | {r.tests} | {_ms(r.median_ms)} | {_ms(r.p95_ms)} | {_ms(r.max_ms)} | "
                     f"{r.waited} of {r.tests} |")
    a, c = by.get("pool"), by.get("pytest-postgresql")
    lines += ["", "## Against the goal", ""]
    if a and c:
        ratio = c.median_ms / a.median_ms if a.median_ms else float("inf")
        shown = f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.1f}"
        lines.append(f"- (a) against (c): **{shown} times faster** per test at the median ({_ms(a.median_ms)} against "
                     f"{_ms(c.median_ms)}); goal: at least {GOAL_RATIO:.0f} times: "
                     f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}. At the 95th percentile: {_ms(a.p95_ms)} against "
                     f"{_ms(c.p95_ms)}.")
    if a:
        lines.append(f"- (a)'s median: {_ms(a.median_ms)}; goal: at most {GOAL_MEDIAN_MS:.0f} ms: "
                     f"{'met' if a.median_ms <= GOAL_MEDIAN_MS else 'NOT met'}.")
    b = by.get("clone")
    if b and a:
        lines.append(f"- What limits it: a clone costs {_ms(b.median_ms)} to make and connect to ((b)). The pool has "
                     f"{a.pool or 'its'} ready when the first test starts (made during the session's start) and two "
                     "threads make more while the tests run; tests faster than that drain it, and then wait for the "
                     f"next clone: here {a.waited} of {a.tests} waited over a millisecond. On PostgreSQL 14 each "
                     "`CREATE DATABASE ... TEMPLATE` requests two checkpoints (before and after copying the files), "
                     "which makes the copies take turns; 15 and later copy by default without them (`STRATEGY "
                     "WAL_LOG`, writing the copy to the WAL instead), which this report does not measure.")
    if b and c:
        verdict = "ours costs more" if b.median_ms > c.median_ms else "ours costs no more, though it does more"
        lines.append(f"- (b) against (c), {_ms(b.median_ms)} against {_ms(c.median_ms)}: {verdict} per clone. It "
                     "gives the clone the dev database's database-level grants and per-account settings (CONNECT, "
                     "the search_path) and logs in as the app account (SCRAM); pytest-postgresql's connects as the "
                     "superuser, which needs neither, and so cannot fail on a missing grant.")
    files = machine.get("files_ms") or {}
    if files:
        lines += ["", "This machine makes a template's worth of files (300 files, 7.5 MB) in "
                  + " and ".join(f"{ms:.0f} ms {'in memory (/dev/shm)' if where == 'memory' else 'on its disk'}"
                                 for where, ms in sorted(files.items()))
                  + ": the server the clones are made on keeps its data in memory, as the plugin's throwaway "
                  "server does; localenv's own server keeps it on the disk."]
    if suites:
        lines += ["", "## A whole suite", "", "| fixture | tests | 1 worker | 2 workers |", "|---|---|---|---|"]
        for kind in dict.fromkeys(s["kind"] for s in suites):
            got = {s["workers"]: s for s in suites if s["kind"] == kind}
            tests = next(iter(got.values()))["tests"]
            cells = [f"{got[w]['seconds']:.1f} s" if w in got else "–" for w in (1, 2)]
            name = "ours (product_change_db)" if kind == "ours" else "pytest-postgresql 10 (postgresql)"
            lines.append(f"| {name} | {tests} | {cells[0]} | {cells[1]} |")
        lines += ["", "Wall time of `pytest` in a fresh process: collection, pools or templates, every test, teardown."]
    return lines


def write(path: Path, out_dir: Path, server: str = "localenv's embedded PostgreSQL 14",
          now: datetime | None = None) -> list[Path]:
    rows, suites, machine = read(path)
    if not rows:
        raise SystemExit(f"error: {path} holds no per-test measurements (was the benchmark run?)")
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d-%H%M")
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"clones-{stamp}.md"
    md.write_text("\n".join(markdown(rows, suites, machine, stamp, server)) + "\n", encoding="utf-8")
    js = out_dir / f"clones-{stamp}.json"
    js.write_text(json.dumps({"date": stamp, "rows": [asdict(r) for r in rows], "suites": suites}, indent=2) + "\n",
                  encoding="utf-8")
    return [md, js]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localenv.clonebench.report")
    parser.add_argument("json", type=Path, help="pytest-benchmark's --benchmark-json")
    parser.add_argument("--output", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    if not args.json.is_file():
        print(f"error: {args.json}: no such file (run nox -s clones-bench)", file=sys.stderr)
        return 3
    for p in write(args.json, args.output):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
