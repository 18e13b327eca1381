"""The gate where users run it: the GitHub Actions workflow (checked by actionlint), the
annotations a failing check writes, and the pre-commit hook run through pre-commit's own
try-repo on a repository holding the manifests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conformance import tools
from conformance.pg.binaries import cache_root
from conformance.targets import kind_cluster
from tests.project import ROOT, ProjectCopy

WORKFLOW = ROOT / ".github" / "workflows" / "conformance.yml"


@pytest.fixture(scope="module")
def actionlint():
    argv = tools.actionlint_argv()
    if argv is None:
        pytest.skip(tools.reason("actionlint"))
    return argv


def test_workflow_passes_actionlint(actionlint):
    proc = subprocess.run([*actionlint, str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_reports_a_broken_workflow(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("timeout-minutes: 10", "timeout-minutes: ten")
                      .replace("${{ env.PYTHON_VERSION }}", "${{ env.PYTHON_VERSION }", 1))
    proc = subprocess.run([*actionlint, str(broken)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "broken.yml:" in proc.stdout


def test_workflow_runs_the_three_jobs_with_timeouts_and_the_pinned_kind():
    flow = yaml.safe_load(WORKFLOW.read_text())
    jobs = flow["jobs"]
    assert set(jobs) == {"gate", "policy", "native", "kind"}
    assert all(job.get("timeout-minutes") for job in jobs.values())
    assert flow["env"]["KIND_VERSION"] == kind_cluster.KIND_VERSION
    assert flow["env"]["KIND_NODE_IMAGE"] == kind_cluster.NODE_IMAGE
    runs = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in jobs.items()}
    assert "check --format github --junit reports/gate.xml --summary \"$GITHUB_STEP_SUMMARY\"" in runs["gate"]
    assert "--target native" in runs["native"] and "--target kind" in runs["kind"]
    assert '".[policy]"' in runs["policy"] and "conformance policy" in runs["policy"]
    change = next(s for s in jobs["gate"]["steps"] if "--base" in s.get("run", ""))
    assert change["if"] == "github.event_name == 'pull_request'" and '--base "origin/$BASE_REF"' in change["run"]
    assert jobs["gate"]["steps"][0]["with"]["fetch-depth"] == 0, "the base commit must be there"
    for name, job in jobs.items():
        if name == "policy":
            continue  # no report file: its output is the log
        uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
        assert uploads and uploads[0].get("if") == "always()", f"job {name} keeps its JUnit report"
    assert flow[True]["pull_request"]["paths"][:4] == ["manifests/**", "upgrade/**", "sql/**", "conformance/**"]
    assert "runbook --docs --check" in runs["gate"]  # docs/runbooks/ follows the manifests
    assert "upgrade-overlays --check" in runs["gate"] and '--manifests "upgrade/pg$major" --pg-major "$major"' in runs["gate"]


def test_github_annotations_point_at_the_broken_line(tmp_path):
    project = ProjectCopy(tmp_path)
    sts = project.manifests / "postgresql-product-change-statefulset.yaml"
    text = sts.read_text()
    sts.write_text(text.replace("              cpu: 1000m", "              cpu: 2000m", 1))
    line = next(i for i, l in enumerate(sts.read_text().splitlines(), 1) if "cpu: 2000m" in l)
    junit, summary = tmp_path / "gate.xml", tmp_path / "summary.md"
    proc = subprocess.run([sys.executable, "-m", "conformance", "check", "--manifests", str(project.manifests),
                           "--format", "github", "--junit", str(junit), "--summary", str(summary)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    errors = [l for l in proc.stdout.splitlines() if l.startswith("::error ")]
    assert errors == [f"::error file={sts},line={line},title=plan-3.1-cpu-limit (plan 3.1)::StatefulSet/postgresql-product-change "
                      "spec.template.spec.containers[0].resources.limits.cpu: expected 1000m, found 2000m"]
    assert 'failures="1"' in junit.read_text() and "plan-3.1-cpu-limit" in summary.read_text()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", *args],
                   check=True, capture_output=True)


@pytest.mark.slow
@pytest.mark.parametrize("broken", [False, True])
def test_pre_commit_hook_through_try_repo(tmp_path, broken):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and this project as a git checkout (pre-commit try-repo reads it)")
    if subprocess.run(["git", "-C", str(ROOT), "ls-files", "--error-unmatch", ".pre-commit-hooks.yaml"],
                      capture_output=True).returncode != 0:
        pytest.skip(".pre-commit-hooks.yaml is not committed yet (try-repo reads the repository's files)")
    user = tmp_path / "service-repo"
    user.mkdir()
    for name in ("manifests", "sql", "docs"):
        shutil.copytree(ROOT / name, user / name)
    if broken:
        sts = user / "manifests" / "postgresql-product-change-statefulset.yaml"
        sts.write_text(sts.read_text().replace("memory: 2Gi", "memory: 4Gi", 1))
    _git(user, "init", "-q")
    _git(user, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(cache_root() / "pre-commit")}
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "product-change-db-gate",
                           "--all-files"], cwd=user, capture_output=True, text=True, timeout=900, env=env)
    out = proc.stdout + proc.stderr
    if broken:
        assert proc.returncode == 1, out
        assert "plan-3.1-memory-limit (plan 3.1): expected 2Gi, found 4Gi" in out
    else:
        assert proc.returncode == 0 and "Passed" in out, out
