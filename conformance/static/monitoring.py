"""Plan 8.1 and 14.3 in the manifests: a metrics sidecar that reads the server as the
read-only account, and one alert per alarm with the plan's threshold and duration."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from conformance import tools, workload
from conformance.monitoring import rules
from conformance.plan import ALERTS, figure
from conformance.registry import Check, Skip, add_static, static
from conformance.static import wraps_missing

READONLY_KEYS = {"DATA_SOURCE_USER": "readonly-username", "DATA_SOURCE_PASS": "readonly-password"}


def _alert_check(key: str):
    fig = figure(key)
    alert_name, metrics = ALERTS[key]

    def check(ctx):
        obj = rules.rule_object(ctx.manifests)
        if obj is None:
            yield ctx.missing("PrometheusRule", "alert-rules")
            return
        alert = rules.alerts(ctx.manifests).get(alert_name)
        if alert is None:
            yield ctx.finding(obj, ("spec", "groups"), f"an alert {alert_name} for plan {fig.section} ({fig.title})",
                              "none")
            return
        want = rules.expected_threshold(key)
        if alert.threshold != want:
            yield ctx.finding(obj, alert.path + ("expr",), f"... > {want:g} ({fig.title}: {fig.expected})",
                              f"... > {alert.threshold:g}" if alert.threshold is not None else alert.expr[-40:])
        try:
            got_for = alert.for_seconds
        except ValueError as exc:
            got_for = str(exc)
        if got_for != rules.duration_seconds(fig.expected["for"]):
            yield ctx.finding(obj, alert.path + ("for",), fig.expected["for"], alert.rule.get("for", "(none: 0s)"))
        missing = [m for m in metrics if m not in alert.expr]
        if missing:
            yield ctx.finding(obj, alert.path + ("expr",), f"built on {', '.join(metrics)}", f"lacks {', '.join(missing)}")
        if not alert.labels.get("severity"):
            yield ctx.finding(obj, alert.path + ("labels", "severity"), "a severity label", "none")
    return check


for _key in ALERTS:
    _fig = figure(_key)
    add_static(Check(f"plan-{_fig.section}-{_key}", _fig.section, _fig.title, wraps_missing(_alert_check(_key)),
                     ("14.3-metrics",), "static"))


@static("plan-8.1-metrics-sidecar", "8.1", "a metrics sidecar, pinned, reading the server as the read-only account",
        checklist=("14.3-metrics",))
def metrics_sidecar(ctx):
    db = workload.database(ctx.manifests)
    name = figure("metrics-container").expected
    sidecar = workload.metrics_sidecar(ctx.manifests)
    if sidecar is None:
        yield ctx.finding(db.owner, workload.POD_SPEC[db.owner.kind] + ("containers",),
                          f"a container {name} (postgres_exporter)", [c.name for c in workload.containers(ctx.manifests, db.owner)])
        return
    if sidecar.image != figure("metrics-exporter").expected:
        yield ctx.finding(db.owner, sidecar.path + ("image",), figure("metrics-exporter").expected, sidecar.image)
    for var, key in READONLY_KEYS.items():
        source = sidecar.secret_source(var)  # a secretKeyRef or a VAR_FILE into a Secret volume
        if source is None or source[2] != key:
            yield ctx.finding(db.owner, source[0] if source else sidecar.path + ("env",),
                              f"{var} from Secret key {key} (the read-only account)",
                              f"{var} from {source[2] if source else 'no Secret key'}")
    ports = [p.get("containerPort") for p in sidecar.spec.get("ports") or []]
    if figure("metrics-port").expected not in ports:
        yield ctx.finding(db.owner, sidecar.path + ("ports",), [figure("metrics-port").expected], ports)
    for probe in ("livenessProbe", "readinessProbe"):
        if not sidecar.spec.get(probe):
            yield ctx.finding(db.owner, sidecar.path + (probe,), "an HTTP probe of the metrics port", "none")
    resources = sidecar.spec.get("resources") or {}
    for part in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if not (resources.get(part) or {}).get(res):
                yield ctx.finding(db.owner, sidecar.path + ("resources", part, res), "set", "missing")


@static("plan-8.1-rules-valid", "8.1", "the alert rules parse (promtool check rules)", checklist=("14.3-metrics",))
def rules_valid(ctx):
    if rules.rule_object(ctx.manifests) is None:
        raise Skip("no PrometheusRule (the alert checks report it)")
    promtool = tools.find("promtool", fetch=False)
    if promtool is None:
        raise Skip(tools.reason("promtool"))
    with tempfile.TemporaryDirectory() as tmp:
        path = rules.write_rule_file(ctx.manifests, Path(tmp) / "rules.yaml")
        proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        obj = rules.rule_object(ctx.manifests)
        detail = [l.strip() for l in (proc.stderr or proc.stdout).splitlines() if l.strip()]
        yield ctx.finding(obj, ("spec", "groups"), "rules promtool accepts", detail[-1] if detail else proc.returncode)
