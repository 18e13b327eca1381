"""Plan 8.1's alarms and checklist 14.3's metrics: the rules tested with the real promtool
(fetched from Debian's prometheus package when it is not installed), a threshold changed in a
copy caught by both promtool and the gate, and the pieces that run the metrics sidecar."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance import manifests, tools, workload
from conformance.live.metrics_checks import judge
from conformance.monitoring import rule_tests, rules
from conformance.plan import ALERTS
from conformance.results import Status
from conformance.targets.exporter import local_argv
from conformance.targets.mapping import LocalMapping
from tests.project import ROOT, ProjectCopy, run_gate

RULES = "manifests/monitoring/postgresql-product-change-rules.yaml"


@pytest.fixture(scope="module")
def promtool():
    path = tools.find("promtool")
    if path is None:
        pytest.skip(tools.reason("promtool"))
    return path


def test_every_alarm_has_a_generated_test_pair():
    generated = rule_tests.tests(manifests.load(ROOT / "manifests"), "rules.yaml")
    names = [case["name"] for case in generated["tests"]]
    assert len(names) == 2 * len(ALERTS)
    assert "alert-cpu (ProductChangeDbCpuHigh): just over fires after 5m" in names
    cpu_over = generated["tests"][0]
    assert [c["eval_time"] for c in cpu_over["alert_rule_test"]] == ["9m", "12m"], "quiet before 5m of high CPU, firing after"
    assert cpu_over["alert_rule_test"][1]["exp_alerts"][0]["exp_labels"]["severity"] == "warning"


@pytest.mark.parametrize("folder", ["manifests", "upgrade/pg18"])
def test_rules_pass_their_promtool_tests(promtool, tmp_path, folder):
    """Also for the upgraded StatefulSet, whose data claim is postgresql-data-pg18-…: the
    storage alarm must still see it."""
    proc = rule_tests.run(manifests.load(ROOT / folder), promtool, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize("old,new,alert", [
    ("> 0.8\n          for: 5m", "> 0.9\n          for: 5m", "ProductChangeDbCpuHigh"),
    ("for: 3m", "for: 10m", "ProductChangeDbMemoryHigh"),
    ("> 80\n", "> 79\n", "ProductChangeDbConnectionsHigh"),
])
def test_a_changed_rule_fails_promtool_and_the_gate(promtool, tmp_path, old, new, alert):
    project = ProjectCopy(tmp_path / "p")
    project.replace(RULES, old, new)
    loaded = manifests.load(project.manifests)
    proc = rule_tests.run(loaded, promtool, tmp_path / "t")
    assert proc.returncode != 0 and alert in proc.stdout + proc.stderr
    key = next(k for k, (name, _) in ALERTS.items() if name == alert)
    result = run_gate(project.manifests, project.sql, project.root / "docs")[f"plan-8.1-{key}"]
    assert result.status is Status.FAILED
    assert "monitoring/postgresql-product-change-rules.yaml" in "\n".join(result.lines())


def test_rules_command(promtool, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "conformance", "rules"], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0 and f"rules: {2 * len(ALERTS)} promtool tests, all passed" in ok.stdout
    project = ProjectCopy(tmp_path / "p")
    project.replace(RULES, "> 0.85\n", "> 0.95\n")
    bad = subprocess.run([sys.executable, "-m", "conformance", "rules", "--manifests", str(project.manifests)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "ProductChangeDbMemoryHigh" in bad.stdout and "FAILED" in bad.stdout


def test_rule_reading():
    found = rules.alerts(manifests.load(ROOT / "manifests"))
    assert found["ProductChangeDbCpuHigh"].threshold == 0.8 and found["ProductChangeDbCpuHigh"].for_seconds == 300
    assert rules.duration_seconds("0m") == 0 and rules.expected_threshold("alert-slow-query") == 5
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        rules.duration_seconds("five minutes")


def test_sidecar_runs_locally_with_the_pods_addresses_mapped():
    loaded = manifests.load(ROOT / "manifests")
    container = workload.metrics_sidecar(loaded)
    mapping = LocalMapping(port=54321, bindir=Path("/pg/bin"))
    mapping = LocalMapping(port=54321, bindir=Path("/pg/bin"), paths={"/run/secrets/postgres-exporter": Path("/w/s")})
    env = mapping.env(container.env)
    assert env["DATA_SOURCE_URI"] == "127.0.0.1:54321/product_change_db?sslmode=disable"
    assert env["DATA_SOURCE_USER_FILE"] == "/w/s/readonly-username", "the Secret's file, where the target wrote it"
    assert container.value("DATA_SOURCE_USER") == "product_change_readonly"
    assert local_argv("/x/exporter", container, "127.0.0.1:40000") == ["/x/exporter", "--web.listen-address=127.0.0.1:40000"]
    assert workload.database(loaded).name == "postgresql", "the database stays the pod's first container"


def test_metrics_judge():
    assert judge({"pg_up": 1.0, "connections": 3.0}, {"pg_up": 1.0, "connections": 8.0}, 5) == []
    (down,) = judge({"pg_up": 0.0, "connections": 0.0}, {"pg_up": 0.0, "connections": 0.0}, 0)
    assert down.path == "containers[postgres-exporter] pg_up" and down.found == "0.0"
    (stuck,) = judge({"pg_up": 1.0, "connections": 3.0}, {"pg_up": 1.0, "connections": 3.0}, 5)
    assert stuck.expected == "at least 8 after opening 5 connections" and stuck.found == "3"
