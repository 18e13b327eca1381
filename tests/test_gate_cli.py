"""The gate's command line: exit codes, one-line errors for unusable input, output formats."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conformance.plan import FIGURES, POSTGRESQL_CONF
from tests.project import ROOT, ProjectCopy


def gate(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "conformance", "check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_passes_on_manifests_for_every_version():
    proc = gate("--k8s-versions", "1.30-1.35")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    *warnings, summary = proc.stdout.strip().splitlines()
    assert summary.startswith("gate: ") and " 0 failed, 0 errors" in summary
    # 14 is past its end of life: said, without failing the gate (tests/test_majors.py)
    assert [w.split(": ", 1)[0] for w in warnings] == ["warning"]


def test_json_lists_a_check_for_every_plan_row(tmp_path):
    out = tmp_path / "gate.json"
    assert gate("--format", "json", "--output", str(out)).returncode == 0
    checks = json.loads(out.read_text())["checks"]
    ids = {c["id"] for c in checks}
    assert all({"id", "section", "status", "message"} <= set(c) for c in checks)
    for name, (section, _) in POSTGRESQL_CONF.items():
        assert f"plan-{section}-{name.replace('_', '-')}" in ids
    sections = {c["section"] for c in checks}
    for fig in FIGURES.values():
        if fig.section not in ("14.2",):  # schema counts: the live targets check them
            assert fig.section in sections, fig.key


def test_fails_with_exit_1_and_one_line_per_finding(tmp_path):
    project = ProjectCopy(tmp_path)
    project.conf("fsync = on", "fsync = off")
    from conformance import config_checksum, manifests

    config_checksum.write(manifests.load(project.manifests))  # only the setting is wrong
    proc = gate("--manifests", str(project.manifests))
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("postgresql-product-change-config.yaml:")
    assert ("plan-12.1-fsync (plan 12.1): expected fsync = on (ours; the plan's off: docs/deviations.md "
            "`conf-fsync`), found fsync = off") in lines[0]
    assert lines[-1].startswith("gate: ") and "1 failed" in lines[-1]


@pytest.mark.parametrize("breakage,message", [
    (lambda p: (p.manifests / "postgresql-product-change-service.yaml").write_text("kind: Service\n  bad: [\n"),
     "postgresql-product-change-service.yaml:2: YAML does not parse"),
    (lambda p: (p.manifests / "postgresql-product-change-service.yaml").write_text(
        (p.manifests / "postgresql-product-change-service.yaml").read_text() + "---\nfoo: [1, 2\n"),
     "postgresql-product-change-service.yaml:"),
    (lambda p: p.replace("manifests/postgresql-product-change-service.yaml", "kind: Service", "kind: Servise"),
     "unknown kind v1/Servise"),
    (lambda p: (p.manifests / "postgresql-product-change-service.yaml").write_text("- just\n- a list\n"),
     "not a Kubernetes object"),
    (lambda p: p.replace("manifests/postgresql-product-change-headless-service.yaml",
                         "name: postgresql-product-change-headless", "name: postgresql-product-change"),
     "duplicate object Service/postgresql-product-change"),
    (lambda p: (p.manifests / "postgresql-product-change-backup-pvc.yaml").unlink(),
     "resource postgresql-product-change-backup-pvc.yaml is missing"),
    (lambda p: p.replace("manifests/postgresql-product-change-secret.yaml", "cHJvZHVjdF9jaGFuZ2VfYXBw", "not*base64!"),
     "Secret postgresql-product-change-secret data.username is not base64"),
])
def test_unusable_input_exits_2_with_one_line(tmp_path, breakage, message):
    project = ProjectCopy(tmp_path)
    breakage(project)
    proc = gate("--manifests", str(project.manifests))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert message in proc.stderr


def test_missing_and_empty_directories_exit_2(tmp_path):
    for args in (["--manifests", str(tmp_path / "nope")], ["--manifests", str(tmp_path)]):
        proc = gate(*args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_bad_version_range_exits_2():
    proc = gate("--k8s-versions", "1.35-1.30")
    assert proc.returncode == 2 and "--k8s-versions" in proc.stderr


def test_version_newer_than_the_schemas_exits_2():
    proc = gate("--k8s-versions", "1.99")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "has schemas up to" in proc.stderr and "1.99 is newer" in proc.stderr


def test_junit_markdown_and_github_formats(tmp_path):
    project = ProjectCopy(tmp_path)
    project.set("postgresql-product-change-statefulset.yaml", "StatefulSet",
                ("spec", "template", "spec", "containers", 0, "resources", "limits", "cpu"), "2")
    junit = gate("--manifests", str(project.manifests), "--format", "junit").stdout
    suite = ET.fromstring(junit)
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["plan-3.1-cpu-limit"]
    markdown = gate("--manifests", str(project.manifests), "--format", "markdown").stdout
    assert "| StatefulSet deployed and Ready | 14.1 |" in markdown and "`plan-3.1-cpu-limit` **FAIL**" in markdown
    github = gate("--manifests", str(project.manifests), "--format", "github").stdout.strip().splitlines()
    assert [line.split("::", 2)[1].split()[0] for line in github] == ["error", "warning"]
    sts = project.manifests / "postgresql-product-change-statefulset.yaml"
    line_no = next(i for i, l in enumerate(sts.read_text().splitlines(), 1) if l.strip() == "cpu: '2'")
    assert github[0].startswith(f"::error file={sts},line={line_no},title=plan-3.1-cpu-limit (plan 3.1)::")


def test_no_password_in_any_output(tmp_path):
    for fmt in ("text", "json", "junit", "markdown", "github"):
        out = gate("--format", fmt, "-v").stdout
        assert "dev_password_2025" not in out and "dev_admin_password_2025" not in out


def test_schema_configmap_is_generated_from_sql():
    proc = subprocess.run([sys.executable, "-m", "conformance", "schema-configmap", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_the_gate_does_not_import_the_kubernetes_client():
    """Its import alone cost a third of every gate run; quantities come from its parser file."""
    code = ("import sys; from conformance.static import load_all; load_all(); "
            "from conformance.quantity import parse_quantity as q; "
            "print(sorted(m for m in sys.modules if m == 'kubernetes' or m.startswith('kubernetes.')), "
            "q('2Gi'), q('500m'))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[] 2147483648 0.500"


def test_a_cached_schema_failure_is_reported_again_and_a_change_is_validated_anew(tmp_path):
    """The schema results kept between runs: the same object fails the same way, a changed one is checked."""
    import os

    from conformance.pg.binaries import ENV_CACHE

    project = ProjectCopy(tmp_path / "p")
    sts = project.manifests / "postgresql-product-change-statefulset.yaml"
    sts.write_text(sts.read_text().replace("          resources:\n            requests:\n              cpu: 500m",
                                           "          resourcez: {}\n          resources:\n            requests:\n"
                                           "              cpu: 500m", 1))
    env = {**os.environ, ENV_CACHE: str(tmp_path / "cache")}

    def gate() -> list[str]:
        proc = subprocess.run([sys.executable, "-m", "conformance", "check", "--manifests", str(project.manifests)],
                              capture_output=True, text=True, env=env, check=False)
        return [line for line in proc.stdout.splitlines() if "plan-5-k8s-schema" in line]

    first = gate()
    assert first and "resourcez" in first[0], first
    (cache,) = (tmp_path / "cache" / "gate").glob("k8s-schema-*.json")
    # The second run must answer from the file, not validate again: mark the cached failure.
    cache.write_text(cache.read_text().replace("resourcez", "resourcez-as-cached"))
    second = gate()
    assert second == [line.replace("resourcez", "resourcez-as-cached") for line in first], (first, second)
    sts.write_text(sts.read_text().replace("          resourcez: {}\n", "", 1))
    third = subprocess.run([sys.executable, "-m", "conformance", "check", "--manifests", str(project.manifests)],
                           capture_output=True, text=True, env=env, check=False)
    assert "plan-5-k8s-schema" not in third.stdout, third.stdout
