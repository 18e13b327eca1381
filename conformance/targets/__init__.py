"""Places a server can run. Lifecycle only: assertions live in conformance.live."""

from __future__ import annotations

TARGETS = ("native", "docker", "kind", "cluster")


def create(name: str, manifests, **options):
    if name in ("docker", "kind", "cluster"):
        import importlib.util

        from conformance.errors import EnvironmentProblem

        if importlib.util.find_spec(f"conformance.targets.{name}") is None:
            raise EnvironmentProblem(f"the {name} target is not built yet (issue 6); use --target native")
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
