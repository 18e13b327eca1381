"""The PrometheusRule of manifests/monitoring/, read: its alerts, each one's threshold and
`for:` duration, and the plain rule file promtool reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from conformance.manifests import K8sObject, Manifests
from conformance.plan import figure

_THRESHOLD = re.compile(r">\s*([0-9]*\.?[0-9]+)\s*$")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Alert:
    obj: K8sObject
    group: int
    index: int
    rule: dict

    @property
    def name(self) -> str:
        return self.rule.get("alert", "")

    @property
    def path(self) -> tuple:
        return ("spec", "groups", self.group, "rules", self.index)

    @property
    def expr(self) -> str:
        return str(self.rule.get("expr", "")).strip()

    @property
    def threshold(self) -> float | None:
        match = _THRESHOLD.search(self.expr)
        return float(match.group(1)) if match else None

    @property
    def for_seconds(self) -> float:
        return duration_seconds(self.rule.get("for", "0s"))

    @property
    def labels(self) -> dict:
        return dict(self.rule.get("labels") or {})


def duration_seconds(text: str) -> float:
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def rule_object(manifests: Manifests) -> K8sObject | None:
    return manifests.find("PrometheusRule", figure("alert-rules").expected)


def alerts(manifests: Manifests) -> dict[str, Alert]:
    obj = rule_object(manifests)
    out: dict[str, Alert] = {}
    for g, group in enumerate((obj.get(("spec", "groups")) or []) if obj else []):
        for i, rule in enumerate(group.get("rules") or []):
            if "alert" in rule:
                out[rule["alert"]] = Alert(obj, g, i, rule)
    return out


def expected_threshold(key: str) -> float:
    """Plan 8.1's figure as the number the expression compares with (percent -> ratio)."""
    value = figure(key).expected
    if "threshold_pct" in value:
        return value["threshold_pct"] / 100
    return float(value.get("threshold", value.get("threshold_s")))


def write_rule_file(manifests: Manifests, path: Path) -> Path:
    """The PrometheusRule's spec as the plain rule file promtool and Prometheus read."""
    obj = rule_object(manifests)
    path.write_text(yaml.safe_dump({"groups": (obj.get(("spec", "groups")) or []) if obj else []}, sort_keys=False))
    return path
