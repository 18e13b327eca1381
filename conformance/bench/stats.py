"""From samples to figures: medians and spread over rounds, gains paired by round against the
durable baseline (drift between rounds cancels out), and verdicts on the plan's claims."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from conformance.bench.configs import SETTINGS, claimed_gain_pct
from conformance.bench.harness import Measurement, Sample

BASELINE = "durable"


@dataclass(frozen=True)
class Summary:
    config: str
    workload: str
    tps_median: float
    tps_min: float
    tps_max: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    wal_bytes_per_tx: float | None
    wal_records_per_tx: float | None
    wal_fpi_per_tx: float | None
    rounds: int
    wal_flushes_per_tx: float | None = None


@dataclass(frozen=True)
class Gain:
    setting: str
    workload: str
    metric: str           # "throughput" or "WAL bytes per transaction"
    median_pct: float
    low_pct: float
    high_pct: float
    claimed_pct: float | None
    verdict: str          # "agree" / "disagree" / "" (no claim on this metric)


def median(values):
    """The median of the values given (None ones left out); None when there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(samples: list[Sample]) -> list[Summary]:
    """Per workload, per configuration in the order they were defined."""
    out = []
    order = {name: i for i, name in enumerate(dict.fromkeys(s.config for s in sorted(samples, key=lambda s: s.round)))}
    if BASELINE in order:
        order[BASELINE] = -1
    keys = sorted({(s.config, s.workload) for s in samples}, key=lambda k: (k[1], order[k[0]]))
    for config, workload in keys:
        group = [s for s in samples if s.config == config and s.workload == workload]
        tps = [s.tps for s in group]
        out.append(Summary(config, workload, statistics.median(tps), min(tps), max(tps),
                           median(s.p50_ms for s in group), median(s.p95_ms for s in group), median(s.p99_ms for s in group),
                           median(s.per_tx("wal_bytes") for s in group), median(s.per_tx("wal_records") for s in group),
                           median(s.per_tx("wal_fpi") for s in group), len(group),
                           median(s.per_tx("wal_flushes") for s in group)))
    return out


def paired(samples: list[Sample], config: str, workload: str, value, baseline: str = BASELINE) -> list[float]:
    """Per round: value(config) / value(baseline) - 1, in percent."""
    base = {s.round: value(s) for s in samples if s.config == baseline and s.workload == workload}
    out = []
    for s in samples:
        if s.config == config and s.workload == workload and base.get(s.round):
            v = value(s)
            if v is not None:
                out.append((v / base[s.round] - 1) * 100)
    return out


def _gain(setting, workload, metric, values, claimed) -> Gain | None:
    if not values:
        return None
    low, high = min(values), max(values)
    verdict = "" if claimed is None else ("agree" if low <= claimed <= high else "disagree")
    return Gain(setting, workload, metric, statistics.median(values), low, high, claimed, verdict)


def gains(m: Measurement) -> list[Gain]:
    out = []
    workloads = sorted({s.workload for s in m.samples})
    for setting in SETTINGS:
        config = f"{setting}=off"
        for workload in workloads:
            # Plan 12.1 claims: fsync "I/O performance", synchronous_commit "transaction
            # throughput": both judged on transactions per second. full_page_writes "WAL
            # performance": judged on WAL volume, with throughput shown beside it.
            claim_tps = claimed_gain_pct(setting) if setting != "full_page_writes" else None
            g = _gain(setting, workload, "throughput", paired(m.samples, config, workload, lambda s: s.tps), claim_tps)
            if g:
                out.append(g)
            if setting == "full_page_writes":
                less_wal = [-v for v in paired(m.samples, config, workload, lambda s: s.per_tx("wal_bytes"))]
                g = _gain(setting, workload, "WAL bytes per transaction (reduction)", less_wal,
                          claimed_gain_pct(setting))
                if g:
                    out.append(g)
    return out


def noise_pct(m: Measurement, workload: str) -> float:
    """The baseline's own spread over rounds, relative to its median (percent)."""
    tps = [s.tps for s in m.samples if s.config == BASELINE and s.workload == workload]
    if len(tps) < 2:
        return 0.0
    return (max(tps) - min(tps)) / statistics.median(tps) * 100


def as_json(m: Measurement) -> dict:
    return {**m.to_json(), "summary": [asdict(s) for s in summarize(m.samples)],
            "gains": [asdict(g) for g in gains(m)],
            "noise_pct": {w: noise_pct(m, w) for w in sorted({s.workload for s in m.samples})}}
