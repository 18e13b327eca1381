"""checkov on the rendered manifests (nox -s policy): 0 failed, every skip with its reason,
and a removed or empty reason is a failure that names the file, the object and the check."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conformance import policy
from conformance.errors import EnvironmentProblem
from tests.project import DELETE, ROOT

STS = "postgresql-product-change-statefulset.yaml"
ANNOTATIONS = ("metadata", "annotations")

try:
    CHECKOV = policy.find_checkov()
except EnvironmentProblem as exc:  # the tests session installs it (the `policy` extra)
    CHECKOV = None
    NO_CHECKOV = str(exc)

needs_checkov = pytest.mark.skipif(CHECKOV is None, reason=f"{NO_CHECKOV if CHECKOV is None else ''}")


def policy_run(manifests_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", "policy", "--manifests", str(manifests_dir), *args],
                          capture_output=True, text=True, timeout=600, check=False)


@needs_checkov
def test_the_manifests_pass_with_every_skip_explained():
    proc = policy_run(ROOT / "manifests", "--format", "json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["checkov_version"] == policy.CHECKOV_VERSION == report["pinned"]
    by_status = {}
    for r in report["results"]:
        by_status.setdefault(r["status"], []).append(r)
    assert "failed" not in by_status
    skipped = by_status["skipped"]
    assert {(r["obj"], r["check_id"]) for r in skipped} == {
        (obj, check) for obj in ("StatefulSet/postgresql-product-change", "Job/postgresql-product-change-schema-init",
                                 "CronJob/postgresql-product-change-backup")
        for check in ("CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_40")}
    assert all(r["reason"] and r["reason"] != policy.NO_REASON for r in skipped)
    passed = {r["check_id"] for r in by_status["passed"]}
    # What issue 16 fixed rather than skipped holds now.
    assert {"CKV_K8S_35", "CKV_K8S_9", "CKV2_K8S_6"} <= passed


@needs_checkov
def test_removing_an_annotation_makes_it_fail(project):
    project.set(STS, "StatefulSet", ANNOTATIONS + ("checkov.io/skip1",), DELETE)
    proc = policy_run(project.manifests)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(rf"^{re.escape(STS)}:\d+: StatefulSet/postgresql-product-change "
                     r"spec\.template\.spec\.containers\[0\]\.image: CKV_K8S_43 \(Image should use digest\): failed$",
                     proc.stdout, re.M), proc.stdout
    assert "1 failed" in proc.stdout.splitlines()[-1]


@needs_checkov
def test_a_skip_without_its_reason_fails(project):
    project.set(STS, "StatefulSet", ANNOTATIONS + ("checkov.io/skip2",), "CKV_K8S_15")
    proc = policy_run(project.manifests)
    assert proc.returncode == 1
    assert "StatefulSet/postgresql-product-change: CKV_K8S_15 (Image Pull Policy should be Always): failed: " \
           "skipped without a reason" in proc.stdout


def test_no_checkov_is_one_line_and_exit_2(tmp_path):
    proc = policy_run(ROOT / "manifests", "--checkov", str(tmp_path / "checkov"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "checkov not found at" in proc.stderr and "nox -s policy" in proc.stderr


def test_no_password_outside_the_secret_in_the_rendered_manifests():
    """What `kubectl kustomize manifests/` renders, as our loader renders it (with shared/ and
    monitoring/): the Secret's passwords, plain or base64, nowhere but in the Secret."""
    import base64

    import yaml

    from conformance import manifests

    m = manifests.load(ROOT / "manifests")
    (secret,) = m.of_kind("Secret")
    passwords = [m.secret_value(secret.name, k) for k in secret.get(("data",)) if "password" in k]
    assert len(passwords) == 4
    needles = passwords + [base64.b64encode(p.encode()).decode() for p in passwords]
    for obj in m.objects:
        if obj.kind == "Secret":
            continue
        text = yaml.safe_dump(obj.data)
        assert not [n for n in needles if n in text], f"{obj.file}: {obj.ref} holds a password"


def _fake_checkov(tmp_path, report) -> str:
    """A program in checkov's place that answers `--version` with the pin and prints this report:
    the shapes a crash, a parse failure or a report without the Kubernetes framework give, which
    the real checkov does not produce on demand."""
    script = tmp_path / "checkov"
    script.write_text("#!/bin/sh\n"
                      f'if [ "$1" = --version ]; then echo {policy.CHECKOV_VERSION}; exit 0; fi\n'
                      f"cat <<'EOF'\n{json.dumps(report)}\nEOF\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("report,says", [
    ([], "checkov gave no Kubernetes report for"),
    ({"check_type": "terraform", "results": {}, "summary": {"checkov_version": policy.CHECKOV_VERSION}},
     "checkov gave no Kubernetes report for"),
    ({"check_type": "kubernetes", "results": {"passed_checks": [], "failed_checks": [], "skipped_checks": []},
      "summary": {"checkov_version": policy.CHECKOV_VERSION}}, "holds no result for"),
    ({"check_type": "kubernetes", "results": {}, "summary": {"checkov_version": "2.0.1"}},
     "checkov 2.0.1 at"),
])
def test_a_report_that_checked_nothing_is_exit_2_not_a_pass(tmp_path, report, says):
    """It used to print "0 passed, 0 failed" and exit 0 (a version other than the pin: a note)."""
    proc = policy_run(ROOT / "manifests", "--checkov", _fake_checkov(tmp_path, report))
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
