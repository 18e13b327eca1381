"""`conformance bench --pg-major N --compare 14`: what moving to another major changes in
throughput and WAL, on the same workloads and the ConfigMap's settings. Both servers run at
once; each round visits both (in an order rotated per round, so the machine's drift hits
both alike), and the change is paired by round, as the dev-tuning report pairs its gains."""

from __future__ import annotations

import statistics
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from conformance import targets
from conformance.bench import pgbench
from conformance.bench.configs import configurations
from conformance.bench.harness import SEED, Harness, Measurement, Options, Sample, rotated
from conformance.bench.stats import paired
from conformance.live.runner import apply_schema, target_options
from conformance.plan import FIGURES, targeting


@dataclass
class Comparison:
    old: int
    new: int
    options: Options
    versions: dict = field(default_factory=dict)   # label -> server_version
    samples: list[Sample] = field(default_factory=list)

    def label(self, major: int) -> str:
        return f"PostgreSQL {major}"

    def changes(self) -> list[tuple[str, str, float, float, float]]:
        """(workload, metric, median, min, max) of new against old, percent, paired by round."""
        out = []
        for workload in sorted({s.workload for s in self.samples}):
            for metric, value in (("throughput (tps)", lambda s: s.tps), ("p95 latency", lambda s: s.p95_ms),
                                  ("WAL bytes per transaction", lambda s: s.per_tx("wal_bytes"))):
                values = paired(self.samples, self.label(self.new), workload, value, baseline=self.label(self.old))
                if values:
                    out.append((workload, metric, statistics.median(values), min(values), max(values)))
        return out


def compare(manifests_by_major: dict, target_name: str, options: Options, progress) -> Comparison:
    old, new = sorted(manifests_by_major)
    comparison = Comparison(old, new, options)
    with ExitStack() as stack:
        harnesses = {}
        for major, loaded in manifests_by_major.items():
            chosen = None if major == FIGURES["pg-major"].plan else major
            target = stack.enter_context(targets.create(
                target_name, loaded, **target_options(target_name, False, True, progress, pg_major=chosen)))
            apply_schema(target)
            harness = Harness(target, loaded, options, progress)
            stack.callback(harness.close)
            stack.callback(harness.restore)
            plan = next(c for c in configurations(loaded) if c.from_configmap)
            harness.apply(plan)
            m = Measurement(options, [plan])
            harness.prepare(m)
            comparison.versions[comparison.label(major)] = m.server_version
            harnesses[major] = (harness, plan)
        workloads = [pgbench.WORKLOADS[name] for name in options.workloads]
        for r in range(options.rounds):
            for major in rotated(sorted(harnesses), r):
                harness, plan = harnesses[major]
                named = type(plan)(comparison.label(major), plan.values, plan.from_configmap)
                for w_index, wl in enumerate(workloads):
                    progress(f"round {r + 1}/{options.rounds} · PostgreSQL {major} · {wl.name} · {options.duration} s")
                    with targeting(major):
                        comparison.samples.append(harness.sample(r, named, wl, SEED + 1000 * r + w_index))
    return comparison


def markdown(c: Comparison) -> str:
    lines = [f"# PostgreSQL {c.new} against {c.old}: what the upgrade changes", "",
             f"Same workloads, the ConfigMap's settings, both servers up at once, {c.options.rounds} rounds of "
             f"{c.options.duration} s, {c.options.clients} clients, order rotated per round; changes paired by round.",
             "", "| server | version |", "|---|---|"]
    lines += [f"| {label} | {version} |" for label, version in c.versions.items()]
    lines += ["", "| workload | server | tps (median) | p95 ms | WAL bytes/tx |", "|---|---|---|---|---|"]
    for workload in sorted({s.workload for s in c.samples}):
        for major in (c.old, c.new):
            group = [s for s in c.samples if s.workload == workload and s.config == c.label(major)]
            if group:
                med = lambda f: statistics.median([v for v in map(f, group) if v is not None] or [0])  # noqa: E731
                lines.append(f"| {workload} | {c.label(major)} | {med(lambda s: s.tps):.0f} | {med(lambda s: s.p95_ms):.2f} | "
                             f"{med(lambda s: s.per_tx('wal_bytes')):.0f} |")
    lines += ["", f"| workload | metric | {c.new} against {c.old}: median [min, max] |", "|---|---|---|"]
    lines += [f"| {w} | {metric} | {med:+.1f}% [{lo:+.1f}, {hi:+.1f}] |" for w, metric, med, lo, hi in c.changes()]
    return "\n".join(lines) + "\n"


def write(c: Comparison, out_dir: Path, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-pg{c.new}-vs-pg{c.old}-{stamp}.md"
    path.write_text(markdown(c))
    return path
