"""promtool unit tests for the alerts, generated from plan 8.1's figures (not from the rules):
for each alarm a series just under the threshold never fires, and one just over fires only
once the plan's duration has passed. Run with `promtool test rules`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from conformance import workload
from conformance.manifests import Manifests
from conformance.monitoring.rules import alerts, duration_seconds, expected_threshold, write_rule_file
from conformance.plan import ALERTS, figure
from conformance.quantity import parse_quantity

NS = figure("namespace").expected
POD = f"{figure('name').expected}-0"
CONTAINER = {"namespace": NS, "pod": POD, "container": figure("container").expected}
MARGIN = 0.02  # "just" under / over, relative


def _labels(labels: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _series(name: str, labels: dict, value: float, counter_rate: float | None = None, minutes: int = 30) -> dict:
    if counter_rate is not None:  # a counter growing by counter_rate per second
        values = f"0+{counter_rate * 60:g}x{minutes}"
    else:
        values = f"{value:g}x{minutes}"
    return {"series": f"{name}{_labels(labels)}", "values": values}


def _inputs(key: str, factor: float, claim: str, at_seconds: int = 0) -> tuple[list[dict], dict]:
    """Input series putting the alarm's quantity at factor x threshold (at at_seconds of the
    test, for quantities that grow with time); the alert's by() labels."""
    threshold = expected_threshold(key)
    level = threshold * factor
    if key == "alert-cpu":
        cores = float(parse_quantity(figure("cpu-limit").expected))
        return ([_series("container_cpu_usage_seconds_total", CONTAINER, 0, counter_rate=level * cores),
                 _series("container_spec_cpu_quota", CONTAINER, cores * 100000),
                 _series("container_spec_cpu_period", CONTAINER, 100000)], {"namespace": NS, "pod": POD})
    if key == "alert-memory":
        limit = float(parse_quantity(figure("memory-limit").expected))
        return ([_series("container_memory_working_set_bytes", CONTAINER, round(level * limit)),
                 _series("container_spec_memory_limit_bytes", CONTAINER, limit)], {"namespace": NS, "pod": POD})
    if key in ("alert-storage", "alert-backup-storage"):
        size = "data-volume-size" if key == "alert-storage" else "backup-volume-size"
        capacity = float(parse_quantity(figure(size).expected))
        pvc = {"namespace": NS, "persistentvolumeclaim": claim if key == "alert-storage" else figure("backup-pvc").expected}
        return ([_series("kubelet_volume_stats_used_bytes", pvc, round(level * capacity)),
                 _series("kubelet_volume_stats_capacity_bytes", pvc, capacity)], pvc)
    if key == "alert-connections":
        # a count: "just" is one connection, split over two states as the exporter reports them
        count = int(threshold) + (1 if factor > 1 else 0)
        base = {"namespace": NS, "pod": POD, "datname": figure("database").expected}
        return ([_series("pg_stat_activity_count", {**base, "state": "active"}, 1),
                 _series("pg_stat_activity_count", {**base, "state": "idle"}, count - 1)], {"namespace": NS, "pod": POD})
    if key == "alert-backup-age":
        # kube-state-metrics: the Unix time of the CronJob's last successful Job
        job = {"namespace": NS, "cronjob": figure("backup-cronjob").expected}
        return [_series("kube_cronjob_status_last_successful_time", job, at_seconds - level)], job
    if key == "alert-slow-query":
        base = {"namespace": NS, "pod": POD, "datname": figure("database").expected}
        return ([_series("pg_stat_activity_max_tx_duration", {**base, "state": "active"}, level),
                 _series("pg_stat_activity_max_tx_duration", {**base, "state": "idle in transaction"}, threshold * 10)],
                {"namespace": NS, "pod": POD})
    raise KeyError(key)


def _annotations(rule: dict, labels: dict) -> dict:
    out = {}
    for key, text in (rule.get("annotations") or {}).items():
        for name, value in labels.items():
            text = text.replace("{{ $labels.%s }}" % name, value)
        out[key] = text
    return out


def tests(manifests: Manifests, rule_file: str) -> dict:
    found = alerts(manifests)
    # The data volume's claim as the StatefulSet controller names it: <template>-<pod>.
    claim = f"{workload.claim_templates(workload.database(manifests).owner)[0]}-{POD}"
    cases = []
    for key, (alert, _) in ALERTS.items():
        rule = found[alert].rule if alert in found else {"labels": {}, "annotations": {}}
        wait = duration_seconds(figure(key).expected["for"]) // 60
        # rate()[5m] underestimates until its window is full of samples: the CPU condition
        # holds from minute 5 of the series.
        start = 5 if key == "alert-cpu" else 0
        fires_at, quiet_at = int(start + wait + 2), int(start + wait - 1)
        over, by = _inputs(key, 1 + MARGIN, claim, fires_at * 60)
        under, _ = _inputs(key, 1 - MARGIN, claim, fires_at * 60)
        labels = {**by, **{k: str(v) for k, v in (rule.get("labels") or {}).items()}, "alertname": alert}
        expected = [{"exp_labels": {k: v for k, v in labels.items() if k != "alertname"},
                     "exp_annotations": _annotations(rule, labels)}]
        over_checks = [{"eval_time": f"{fires_at}m", "alertname": alert, "exp_alerts": expected}]
        if quiet_at >= 0 and wait > 0:
            over_checks.insert(0, {"eval_time": f"{quiet_at}m", "alertname": alert, "exp_alerts": []})
        cases.append({"name": f"{key} ({alert}): just over fires after {figure(key).expected['for']}",
                      "interval": "1m", "input_series": over, "alert_rule_test": over_checks})
        cases.append({"name": f"{key} ({alert}): just under never fires", "interval": "1m", "input_series": under,
                      "alert_rule_test": [{"eval_time": f"{fires_at + 5}m", "alertname": alert, "exp_alerts": []}]})
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": cases}


def run(manifests: Manifests, promtool: str, workdir: Path) -> subprocess.CompletedProcess:
    """Write the rule file and the generated tests into workdir and run promtool on them."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_rule_file(manifests, workdir / "rules.yaml")
    (workdir / "rules.test.yaml").write_text(yaml.safe_dump(tests(manifests, "rules.yaml"), sort_keys=False))
    return subprocess.run([promtool, "test", "rules", "rules.test.yaml"], cwd=workdir, capture_output=True,
                          text=True, timeout=120, check=False)
