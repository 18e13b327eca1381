"""The cluster target: an existing kubectl context (the dev AKS cluster). Read-only unless
--allow-writes: nothing is applied or created; the objects' status, the server's settings,
schema and privileges are read through a port-forward. With --allow-writes, the checks that
stop the server, run scripts as Jobs or delete the pod run too."""

from __future__ import annotations

import os
from pathlib import Path

from conformance.errors import EnvironmentProblem
from conformance.manifests import Manifests
from conformance.registry import Skip
from conformance.targets.kube import KubeTarget

ENV_CONTEXT = "CONFORMANCE_CONTEXT"


def current_context() -> str:
    import subprocess

    proc = subprocess.run(["kubectl", "config", "current-context"], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise EnvironmentProblem("no kubectl context: set CONFORMANCE_CONTEXT or `kubectl config use-context NAME`")
    return proc.stdout.strip()


def missing_context(context: str, known: list[str]) -> str | None:
    """Why a context cannot be used, naming the true cause (not "namespace not found")."""
    if context in known:
        return None
    listed = ", ".join(known) if known else "none"
    return f"no kubectl context {context} in the kubeconfig (its contexts: {listed}): --context NAME or " \
           f"CONFORMANCE_CONTEXT"


class ClusterTarget(KubeTarget):
    name = "cluster"

    def __init__(self, manifests: Manifests, progress=None, context: str | None = None,
                 allow_writes: bool = False, workdir: Path | None = None, dump_dir: Path | None = None, keep=False,
                 pg_major: int | None = None):
        super().__init__(manifests, context or os.environ.get(ENV_CONTEXT) or current_context(), progress,
                         workdir, dump_dir, pg_major)
        self.allow_writes = allow_writes

    def start(self) -> None:
        import subprocess

        listed = subprocess.run([self.kubectl.binary, "config", "get-contexts", "-o", "name"], capture_output=True,
                                text=True, check=False)
        problem = missing_context(self.kubectl.context, listed.stdout.split())
        if problem:
            raise EnvironmentProblem(problem)
        if self.kubectl.get("namespace", self.kubectl.namespace, namespaced=False) is None:
            raise EnvironmentProblem(f"namespace {self.kubectl.namespace} not found in context {self.kubectl.context}; "
                                     "apply the manifests first (kubectl apply -k manifests/)")
        try:
            self.wait_ready()
        except BaseException as exc:
            self.progress(f"failure dump: {self.failure_dump(str(exc))}")
            raise

    @property
    def backup_dir(self) -> Path:
        raise Skip("the cluster target cannot read the backup volume's files from here")

    def stop(self) -> None:
        super().stop()
