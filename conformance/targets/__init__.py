"""Places a server can run. Lifecycle only: assertions live in conformance.live."""

from __future__ import annotations

import shutil

TARGETS = ("native", "docker", "kind", "cluster")


def unavailable_reason(name: str) -> str | None:
    """None when the target can run on this machine; else why not, in one line."""
    if name == "docker":
        from conformance.targets import docker_engine

        reason = docker_engine.unavailable_reason()
        return f"the docker target needs a running Docker engine: {reason}" if reason else None
    if name == "kind":
        from conformance.targets.kind import unavailable_reason as kind_reason

        reason = kind_reason()
        return f"the kind target cannot run here: {reason}" if reason else None
    if name == "cluster" and shutil.which("kubectl") is None:
        return "the cluster target needs kubectl on PATH"
    return None


def create(name: str, manifests, **options):
    if name == "native":
        from conformance.targets.native import NativeTarget

        return NativeTarget(manifests, **options)
    if name == "docker":
        from conformance.targets.docker import DockerTarget

        return DockerTarget(manifests, **options)
    if name == "kind":
        from conformance.targets.kind import KindTarget

        return KindTarget(manifests, **options)
    if name == "cluster":
        from conformance.targets.cluster import ClusterTarget

        return ClusterTarget(manifests, **options)
    raise ValueError(f"unknown target {name!r}; one of {', '.join(TARGETS)}")
