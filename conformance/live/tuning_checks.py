"""Plan 12.1 asserted on the running server, not timed: the benchmark harness with few short
rounds (bench --quick's little sibling), judged on what does not depend on the machine's
speed. full_page_writes=off (as the ConfigMap sets it) must write fewer full-page images per
transaction than the durable baseline; fsync=off and synchronous_commit=off must not lower
throughput by more than the baseline's own noise."""

from __future__ import annotations

from conformance.bench import harness
from conformance.bench.stats import noise_pct, paired
from conformance.plan import figure
from conformance.registry import Skip, live
from conformance.results import Finding

CONFIG_FILE = "postgresql-product-change-config.yaml"
# What the rounds cannot resolve: with one 1-second round (harness.CHECK) a 20% difference;
# with two or more rounds 10%, or the baseline's own spread over the rounds when larger.
NOISE_FLOOR_PCT = {1: 20.0}
NOISE_FLOOR_ROUNDS_PCT = 10.0
# With full_page_writes off a checkpoint is followed by no full-page image at all; with it on,
# images per transaction still vary with throughput (faster runs touch each page more often
# between checkpoints), so the test is "almost none", not merely "fewer".
FPI_FRACTION = 0.1
WORKLOAD = "tpcb-like"


def judge(m: harness.Measurement) -> list[Finding]:
    obj = f"ConfigMap/{figure('config-configmap').expected}"
    out = []
    fpi = {s.config: [] for s in m.samples}
    for s in m.samples:
        if s.workload == WORKLOAD:
            fpi[s.config].append(s.per_tx("wal_fpi"))
    plan_fpi, base_fpi = max(fpi.get("plan") or [0]), min(fpi.get("durable") or [0])
    if not (base_fpi > 0 and plan_fpi <= FPI_FRACTION * base_fpi):
        out.append(Finding(CONFIG_FILE, obj, "full_page_writes (plan 12.1)",
                           f"fewer full-page images per transaction: at most {FPI_FRACTION:.0%} of the durable "
                           f"baseline's {base_fpi:.2f}", f"{plan_fpi:.2f}"))
    noise = max(NOISE_FLOOR_PCT.get(m.options.rounds, NOISE_FLOOR_ROUNDS_PCT), noise_pct(m, WORKLOAD))
    for setting in ("fsync", "synchronous_commit"):
        gains = paired(m.samples, f"{setting}=off", WORKLOAD, lambda s: s.tps)
        if gains and max(gains) < -noise:
            out.append(Finding(CONFIG_FILE, obj, f"{setting} (plan 12.1)",
                               f"{setting}=off not slower than durable beyond the noise (-{noise:.0f}%)",
                               f"{max(gains):+.0f}% in every round"))
    return out


@live("live-12.1-dev-tuning", "12.1", "the dev tuning does what it is for: fewer full-page images, no lost throughput")
def dev_tuning(ctx):
    if not ctx.allow_writes:
        raise Skip("switching the server's settings needs --allow-writes")
    measurement = harness.Harness(ctx.target, ctx.manifests, harness.CHECK).measure()
    return judge(measurement)
