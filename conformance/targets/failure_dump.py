"""When a kind or cluster run fails: events, object descriptions and pod logs, written to
one file for the user (and CI's artifacts) to read. Each part is fetched on its own, so one
failing kubectl call does not lose the rest."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from conformance.targets.kubectl import Kubectl

SECTIONS = (
    ("objects", ("get", "all,pvc,configmap,networkpolicy,cronjob", "-o", "wide")),
    ("events", ("get", "events", "--sort-by=.lastTimestamp")),
    ("describe statefulsets", ("describe", "statefulset")),
    ("describe pods", ("describe", "pod")),
    ("describe jobs", ("describe", "job")),
    ("describe pvcs", ("describe", "pvc")),
)


def dump(kubectl: Kubectl, path: Path, reason: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"# conformance failure dump, {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
             f"# context {kubectl.context}, namespace {kubectl.namespace}"]
    if reason:
        parts.append(f"# reason: {reason}")
    for title, args in SECTIONS:
        parts.append(_section(kubectl, title, args))
    pods = kubectl.run("get", "pods", "-o", "name", check=False).stdout.split()
    for pod in pods:
        parts.append(_section(kubectl, f"logs {pod}", ("logs", pod, "--all-containers", "--prefix", "--tail=500")))
        parts.append(_section(kubectl, f"previous logs {pod}",
                              ("logs", pod, "--all-containers", "--prefix", "--previous", "--tail=200")))
    path.write_text("\n\n".join(parts) + "\n")
    return path


def _section(kubectl: Kubectl, title: str, args: tuple[str, ...]) -> str:
    proc = kubectl.run(*args, check=False)
    body = proc.stdout if proc.returncode == 0 else f"(kubectl failed: {proc.stderr.strip()})"
    return f"## {title}\n$ kubectl {' '.join(args)}\n{body.rstrip()}"
