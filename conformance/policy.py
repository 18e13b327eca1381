"""checkov's Kubernetes checks on the manifests, as users' CI runs them: on the objects
`kubectl kustomize` would render (our loader renders the same, with no kubectl), offline,
with the pinned checkov. Each result is mapped back to the file and line it came from;
a check skipped without a reason counts as failed, so every exception stays explained."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from conformance.errors import EnvironmentProblem
from conformance.manifests import Manifests

CHECKOV_VERSION = "3.3.30"  # the same pin as pyproject.toml's `policy` extra
NO_REASON = "No comment provided"  # what checkov records for a skip without "=reason"
# Offline: no policy download from the Prisma Cloud platform, no PyPI version check.
CHECKOV_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class PolicyResult:
    status: str  # "passed", "failed", "skipped"
    check_id: str
    check_name: str
    file: str
    line: int | None
    obj: str
    fields: tuple[str, ...] = ()
    reason: str = ""

    def line_text(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        fields = f" {', '.join(self.fields)}" if self.fields else ""
        text = f"{where}: {self.obj}{fields}: {self.check_id} ({self.check_name})"
        if self.status == "failed":
            return f"{text}: failed" + (": skipped without a reason" if self.reason == NO_REASON else "")
        return f"{text}: skipped: {self.reason}"


def find_checkov(given: str | None = None) -> str:
    """--checkov, else the checkov installed beside this Python (nox -s policy), else PATH."""
    candidates = [given] if given else [str(Path(sys.executable).parent / "checkov"), shutil.which("checkov")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise EnvironmentProblem(f"checkov not found{' at ' + given if given else ''}: run `nox -s policy`, or "
                             f"pip install 'checkov=={CHECKOV_VERSION}' (the project's `policy` extra)")


def render(manifests: Manifests, folder: Path) -> Path:
    """The objects as one multi-document file, in the kustomization's order."""
    path = folder / "rendered.yaml"
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump_all([o.data for o in manifests.objects], handle, sort_keys=False)
    return path


def _version(checkov: str) -> str:
    proc = subprocess.run([checkov, "--version"], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **CHECKOV_ENV})
    return proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def run(manifests: Manifests, checkov: str, timeout: float = 600) -> tuple[list[PolicyResult], str]:
    """checkov's results, mapped to our files, and its version."""
    by_id = {f"{o.kind}.{o.namespace or 'default'}.{o.name}": o for o in manifests.objects}
    with tempfile.TemporaryDirectory(prefix="pc-policy-") as tmp:
        rendered = render(manifests, Path(tmp))
        proc = subprocess.run(
            [checkov, "--file", str(rendered), "--framework", "kubernetes", "--output", "json", "--skip-download",
             "--compact"],
            capture_output=True, text=True, timeout=timeout, check=False, cwd=tmp,
            env={**os.environ, **CHECKOV_ENV})
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        last = (proc.stderr or proc.stdout).strip().splitlines()
        raise EnvironmentProblem(f"checkov gave no JSON report (exit {proc.returncode}): "
                                 f"{last[-1] if last else 'no output'}") from None
    reports = report if isinstance(report, list) else [report]
    kube = next((r for r in reports if r.get("check_type") == "kubernetes"), None)
    version = (kube or {}).get("summary", {}).get("checkov_version") or _version(checkov)
    if version != CHECKOV_VERSION:
        # Its checks and their results change with the version: another one's verdict is not ours.
        raise EnvironmentProblem(f"checkov {version} at {checkov}; the project pins {CHECKOV_VERSION}: run "
                                 "`nox -s policy`, or pip install 'checkov==" + CHECKOV_VERSION + "'")
    if kube is None:
        last = (proc.stderr or "").strip().splitlines()
        raise EnvironmentProblem(f"checkov gave no Kubernetes report for {len(manifests.objects)} objects (exit "
                                 f"{proc.returncode}){': ' + last[-1] if last else ''}: nothing was checked")
    if kube["results"].get("parsing_errors"):
        raise EnvironmentProblem(f"checkov could not parse the rendered manifests: {kube['results']['parsing_errors']}")
    results = []
    for status in ("failed", "skipped", "passed"):
        for item in kube["results"].get(f"{status}_checks") or []:
            obj = by_id.get(item.get("resource", ""))
            keys = tuple(k.replace("/[", "[").replace("/", ".") for k in (item.get("check_result") or {})
                         .get("evaluated_keys") or ())
            reason = (item.get("check_result") or {}).get("suppress_comment", "")
            # A skip with no reason is no explained exception: it fails like the check.
            effective = "failed" if status == "skipped" and (not reason or reason == NO_REASON) else status
            results.append(PolicyResult(effective, item.get("check_id", "?"), item.get("check_name", ""),
                                        obj.file if obj else item.get("file_path", "?"),
                                        obj.line(("metadata", "name")) if obj else None,
                                        obj.ref if obj else item.get("resource", "?"),
                                        keys if effective == "failed" else (),
                                        (reason or NO_REASON) if status == "skipped" else ""))
    if not results:
        raise EnvironmentProblem(f"checkov's Kubernetes report holds no result for {len(manifests.objects)} "
                                 "objects: nothing was checked")
    return results, version


def summary(results: list[PolicyResult], version: str) -> str:
    count = {s: sum(1 for r in results if r.status == s) for s in ("passed", "failed", "skipped")}
    return (f"policy (checkov {version}): {count['passed']} passed, {count['failed']} failed, "
            f"{count['skipped']} skipped with a reason")


def as_json(results: list[PolicyResult], version: str) -> str:
    return json.dumps({"checkov_version": version, "pinned": CHECKOV_VERSION,
                       "results": [r.__dict__ | {"fields": list(r.fields)} for r in results]}, indent=2)
