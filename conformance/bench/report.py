"""The benchmark's three files: bench-<date>.md for people, bench-<date>.json with every
figure, bench-<date>.png (throughput and WAL volume per configuration)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from conformance.bench import pgbench
from conformance.bench.harness import Measurement
from conformance.bench.stats import BASELINE, as_json, gains, noise_pct, summarize


def _f(value, digits=1, unit=""):
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def read_suite(path: Path | None) -> list[dict]:
    """pytest-benchmark's --benchmark-json: name, group, median and range in seconds."""
    if path is None or not path.exists():
        return []
    data = json.loads(path.read_text())
    return [{"name": b["name"], "group": b.get("group"), "median_s": b["stats"]["median"],
             "min_s": b["stats"]["min"], "max_s": b["stats"]["max"], "rounds": b["stats"]["rounds"]}
            for b in data.get("benchmarks", [])]


def markdown(m: Measurement, suite: list[dict], stamp: str, png_name: str) -> str:
    o = m.options
    lines = [f"# What the dev tuning buys: benchmark of {stamp}", "",
             f"PostgreSQL {m.server_version} on the **{m.machine.get('target')}** target; {m.machine.get('cpus')} CPUs, "
             f"{m.machine.get('platform')}. {o.rounds} rounds; in each round every configuration runs every workload "
             f"for {o.duration} s with {o.clients} clients (pgbench scale {o.scale}); the order of configurations "
             "rotates per round. Before each run: CHECKPOINT and `pg_stat_reset_shared('wal')`; halfway through it one "
             "more CHECKPOINT, so full-page images are written within every run. Fixed pgbench seeds.", "",
             "Workloads: " + "; ".join(f"**{w}**, {pgbench.WORKLOADS[w].title}" for w in o.workloads) + ".", "",
             f"![throughput and WAL volume per configuration]({png_name})", "",
             "## Plan 12.1's claims against the measurement", "",
             "Gains are paired by round against the durable baseline (all three settings on); the interval is the "
             "lowest and highest of the per-round gains.", "",
             "| setting off | workload | metric | measured (median) | interval | plan claims | verdict |",
             "|---|---|---|---|---|---|---|"]
    for g in gains(m):
        claim = "–" if g.claimed_pct is None else f"+{g.claimed_pct:.0f}%"
        lines.append(f"| {g.setting} | {g.workload} | {g.metric} | {g.median_pct:+.0f}% | "
                     f"[{g.low_pct:+.0f}%, {g.high_pct:+.0f}%] | {claim} | {g.verdict or '–'} |")
    lines += ["", "Noise: the baseline's own spread over rounds is "
              + ", ".join(f"{noise_pct(m, w):.0f}% ({w})" for w in o.workloads) + ".", "",
              "## Throughput and latency", "",
              "| configuration | workload | tps median | tps range | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    summaries = summarize(m.samples)
    for s in summaries:
        lines.append(f"| {s.config} | {s.workload} | {_f(s.tps_median)} | {_f(s.tps_min)}–{_f(s.tps_max)} | "
                     f"{_f(s.p50_ms, 2)} | {_f(s.p95_ms, 2)} | {_f(s.p99_ms, 2)} |")
    lines += ["", "## WAL per transaction (pg_stat_wal; flushes from pg_stat_io on 18)", "",
              "| configuration | workload | bytes | records | full-page images | WAL flushes |", "|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.config} | {s.workload} | {_f(s.wal_bytes_per_tx, 0)} | {_f(s.wal_records_per_tx, 1)} | "
                     f"{_f(s.wal_fpi_per_tx, 2)} | {_f(s.wal_flushes_per_tx, 3)} |")
    lines += ["", "## The disk's ceiling", ""]
    if m.fsync_ops_per_s is not None:
        lines.append(f"`pg_test_fsync` (fdatasync, one 8 kB write): **{m.fsync_ops_per_s:,.0f} flushes/s** where the "
                     "data directory is. A durable commit needs one flush; commits of concurrent clients can share one.")
        lines += ["", "| workload | durable commits/s (median) | flush ceiling |", "|---|---|---|"]
        for s in summaries:
            if s.config == BASELINE:
                commits = s.tps_median * pgbench.WORKLOADS[s.workload].commits_per_tx
                lines.append(f"| {s.workload} | {commits:,.0f} | {m.fsync_ops_per_s:,.0f} |")
    else:
        lines.append("pg_test_fsync was not run (`--quick` of the check, or no local data directory).")
    if suite:
        lines += ["", "## The suite itself (pytest-benchmark)", "", "| benchmark | median | range | rounds |",
                  "|---|---|---|---|"]
        for b in suite:
            lines.append(f"| {b['name']} | {b['median_s']:.2f} s | {b['min_s']:.2f}–{b['max_s']:.2f} s | {b['rounds']} |")
        ratios = suite_ratios(suite)
        if ratios:
            lines += ["", "Against their peers, measured in the same run (issue 19's targets):", "",
                      "| ours | peer | ratio (medians) | target |", "|---|---|---|---|"]
            lines += [f"| {ours} | {peer} | {ratio:.2f}x | {target} |" for ours, peer, ratio, target in ratios]
    lines += ["", "## Configurations and settings", "",
              "| configuration | fsync | synchronous_commit | full_page_writes | applied by |", "|---|---|---|---|---|"]
    for c in m.configs:
        how = "ALTER SYSTEM RESET (the ConfigMap's postgresql.conf)" if c.from_configmap else "ALTER SYSTEM SET + reload"
        lines.append(f"| {c.name} | {c.values['fsync']} | {c.values['synchronous_commit']} | "
                     f"{c.values['full_page_writes']} | {how} |")
    lines += ["", "Server settings during the ConfigMap's configuration (manifests):", "", "| setting | value | source |", "|---|---|---|"]
    for name, row in sorted(m.settings.items()):
        lines.append(f"| {name} | {row['setting']}{row['unit'] or ''} | {row['source']} |")
    lines += ["", "## Rerun it", "", "```", f"python -m conformance bench --target {m.machine.get('target')}"
              + (" --quick" if o.rounds < 5 else ""), *m.commands, "```", "",
              "The product-change workload's script is in the JSON file (`workload_scripts`)."]
    return "\n".join(lines) + "\n"


# (ours, its peer, the target the ratio is held to) of the suite's own benchmarks.
PEERS = (("test_gate_wall_time", "test_kubernetes_validate_one_version_wall_time", "at most 1.5x"),
         ("test_gate_cold_cache_wall_time", "test_kubernetes_validate_one_version_wall_time", "(no cache: every object)"),
         ("test_native_run_wall_time", "test_fresh_server_wall_time", "at most 12 s in all"),
         ("test_nox_conformance_warm_wall_time", "test_native_run_wall_time", "at most 12 s in all"))


def suite_ratios(suite: list[dict]) -> list[tuple[str, str, float, str]]:
    by_name = {b["name"]: b["median_s"] for b in suite}
    return [(ours, peer, by_name[ours] / by_name[peer], target) for ours, peer, target in PEERS
            if ours in by_name and by_name.get(peer)]


def chart(m: Measurement, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    summaries = summarize(m.samples)
    configs = [c.name for c in m.configs]
    workloads = list(m.options.workloads)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(1, len(workloads))
    for i, wl in enumerate(workloads):
        rows = {s.config: s for s in summaries if s.workload == wl}
        xs = [j + i * width for j in range(len(configs))]
        med = [rows[c].tps_median if c in rows else 0 for c in configs]
        err = [[rows[c].tps_median - rows[c].tps_min if c in rows else 0 for c in configs],
               [rows[c].tps_max - rows[c].tps_median if c in rows else 0 for c in configs]]
        ax1.bar(xs, med, width, yerr=err, capsize=3, label=wl)
        ax2.bar(xs, [rows[c].wal_bytes_per_tx or 0 if c in rows else 0 for c in configs], width, label=wl)
    for ax, title in ((ax1, "transactions per second (median, range over rounds)"), (ax2, "WAL bytes per transaction")):
        ax.set_xticks([j + width * (len(workloads) - 1) / 2 for j in range(len(configs))])
        ax.set_xticklabels(configs, rotation=20, ha="right")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(m: Measurement, out_dir: Path, suite_json: Path | None = None, now: datetime | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d")
    base = out_dir / f"bench-{stamp}"
    suite = read_suite(suite_json)
    png = chart(m, base.with_suffix(".png"))
    md = base.with_suffix(".md")
    md.write_text(markdown(m, suite, stamp, base.with_suffix(".png").name if png else "(matplotlib not installed)"))
    data = {**as_json(m), "suite": suite, "date": stamp,
            "workload_scripts": {w.name: w.script for w in pgbench.WORKLOADS.values() if w.script}}
    js = base.with_suffix(".json")
    js.write_text(json.dumps(data, indent=2) + "\n")
    return [p for p in (md, js, png) if p]
