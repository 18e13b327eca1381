"""Plan 12.1 asserted on the running server: the benchmark harness in its short form
(harness.CHECK: the durable baseline and the ConfigMap's configuration, interleaved rounds).

Each of the three settings must be in effect as the plan's figures want it (the plan's value,
or ours where docs/deviations.md says why: conf_expected), and do what it is for where it is
off: with synchronous_commit=off commits that do not wait for a WAL flush (far fewer flushes
per transaction than the durable baseline; where throughput is so low that the WAL writer's
own flushes cannot be told from a commit's, inconclusive). fsync and full_page_writes stay on
(deviations.md #12): their being in effect is what is judged of them. Throughput is noise on a
shared machine (a 1-CPU container on 2 busy cores measured -30% once and +10% the next run):
it decides only where the 95% interval of the paired per-round change lies wholly beyond the
threshold (a failure) or wholly within it (a pass); an interval across it is reported as
inconclusive, a warning, never a failure."""

from __future__ import annotations

import statistics

from conformance.bench import harness
from conformance.bench.configs import MANIFESTS, SETTINGS, as_shown
from conformance.bench.stats import BASELINE, paired
from conformance.plan import conf_expected, figure
from conformance.registry import Skip, live
from conformance.results import Finding, Inconclusive

CONFIG_FILE = "postgresql-product-change-config.yaml"
OURS = MANIFESTS
# A durable commit waits for a WAL flush (group commit shares one among concurrent commits:
# about one per transaction down to one per client's batch); with synchronous_commit=off only
# the WAL writer flushes, every wal_writer_delay or 1 MB of WAL, plus the checkpoint's own.
FLUSH_FRACTION = 0.5
# Flushes a second the WAL writer and a checkpoint can account for with synchronous_commit=off:
# twice wal_writer_delay's rate (PostgreSQL's default 200 ms when the server does not report
# it) and 2 more. Above half the baseline's per transaction *and* above this rate, commits
# waited; above half but within this rate, throughput is too low to tell.
WRITER_DELAY_MS = 200
WRITER_MARGIN = 2.0
WORKLOAD = "tpcb-like"
# A loss of throughput beyond this is what "no lost throughput" excludes.
LOSS_THRESHOLD_PCT = 10.0
# Student's t, two-sided 95%, by degrees of freedom (rounds - 1).
T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def interval(changes: list[float]) -> tuple[float, float] | None:
    """The 95% confidence interval of the mean change (percent), or None below two rounds."""
    if len(changes) < 2:
        return None
    mean, sd = statistics.mean(changes), statistics.stdev(changes)
    half = T_95.get(len(changes) - 1, 1.96) * sd / len(changes) ** 0.5
    return mean - half, mean + half


def judge(m: harness.Measurement) -> list[Finding]:
    """Findings on a measurement, against the three settings as the plan's figures want them
    (conf_expected: ours where we deviate)."""
    expected = {name: as_shown(name, conf_expected(name)) for name in SETTINGS}
    obj = f"ConfigMap/{figure('config-configmap').expected}"
    out: list[Finding] = []
    for name, wanted in expected.items():
        shown = (m.settings.get(name) or {}).get("setting")
        if shown != wanted:
            out.append(Finding(CONFIG_FILE, obj, f"{name} (plan 12.1)", f"{wanted} in effect", shown))
    if expected.get("synchronous_commit") == "off":
        out += _flush_findings(m, [s for s in m.samples if s.workload == WORKLOAD], obj)
    changes = paired(m.samples, OURS, WORKLOAD, lambda s: s.tps)
    span = interval(changes)
    shown = ", ".join(f"{c:+.0f}%" for c in changes)
    wanted = f"the ConfigMap's configuration not slower than durable by more than {LOSS_THRESHOLD_PCT:.0f}%"
    if span is None or (span[0] < -LOSS_THRESHOLD_PCT <= span[1]):
        out.append(Inconclusive(CONFIG_FILE, obj, "throughput (plan 12.1)", wanted,
                                f"{shown} per round: " + ("too few rounds to judge" if span is None else
                                f"95% interval [{span[0]:+.0f}%, {span[1]:+.0f}%] holds both; noise on this machine "
                                "(nox -s bench measures it)")))
    elif span[1] < -LOSS_THRESHOLD_PCT:
        out.append(Finding(CONFIG_FILE, obj, "throughput (plan 12.1)", wanted,
                           f"{shown} per round, 95% interval [{span[0]:+.0f}%, {span[1]:+.0f}%]"))
    return out


def _flush_findings(m: harness.Measurement, samples, obj: str) -> list[Finding]:
    path = "synchronous_commit (plan 12.1)"
    ours = [s for s in samples if s.config == OURS and s.wal_flushes is not None and s.transactions and s.tps]
    base = [v for s in samples if s.config == BASELINE and (v := s.per_tx("wal_flushes")) is not None]
    if not ours or not base:
        return [Inconclusive(CONFIG_FILE, obj, path, "WAL flushes per transaction measured",
                             "not measured (no pg_stat_wal/pg_stat_io figure for "
                             f"{'the durable baseline' if not base else 'the ConfigMap configuration'})")]
    base_per_tx = min(base)
    worst = max(ours, key=lambda s: s.wal_flushes / s.transactions)
    found_per_tx = worst.wal_flushes / worst.transactions
    per_second = worst.wal_flushes / (worst.transactions / worst.tps)
    wanted = (f"commits that do not wait for a WAL flush: at most {FLUSH_FRACTION:.0%} of the durable baseline's "
              f"{base_per_tx:.2f} flushes per transaction")
    if found_per_tx <= FLUSH_FRACTION * base_per_tx:
        return []
    delay = _writer_delay_ms(m)
    writer_rate = 2 * 1000 / delay + WRITER_MARGIN
    found = f"{found_per_tx:.2f} ({per_second:.1f} flushes a second at {worst.tps:.0f} transactions a second)"
    if per_second <= writer_rate:
        return [Inconclusive(CONFIG_FILE, obj, path, wanted, f"{found}: within what the WAL writer alone flushes "
                             f"(wal_writer_delay {delay:g} ms: up to {writer_rate:.0f} a second); too few "
                             "transactions to tell")]
    return [Finding(CONFIG_FILE, obj, path, wanted, found)]


def _writer_delay_ms(m: harness.Measurement) -> float:
    reported = (m.settings.get("wal_writer_delay") or {}).get("setting")
    try:
        return float(reported) if reported else WRITER_DELAY_MS  # pg_settings' unit for it is ms
    except ValueError:
        return WRITER_DELAY_MS


@live("live-12.1-dev-tuning", "12.1", "the dev tuning does what it is for: the ConfigMap's settings in effect, "
      "commits without a flush wait, no lost throughput (judged only where the rounds decide)")
def dev_tuning(ctx):
    if not ctx.allow_writes:
        raise Skip("switching the server's settings needs --allow-writes")
    from conformance.bench.configs import NotInEffect

    try:
        measurement = harness.Harness(ctx.target, ctx.manifests, harness.CHECK).measure()
    except NotInEffect as exc:
        if not exc.config.from_configmap:  # our own ALTER SYSTEM not taking: the harness's trouble
            raise
        # The server never showed the ConfigMap's values after a reload: it does not read them.
        return [Finding(CONFIG_FILE, f"ConfigMap/{figure('config-configmap').expected}", "fsync, synchronous_commit, "
                        "full_page_writes (plan 12.1)", "the ConfigMap's values in effect after a reload", str(exc))]
    return judge(measurement)
