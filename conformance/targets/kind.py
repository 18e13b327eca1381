"""The kind target: a local Kubernetes cluster (kind, pinned in kind_cluster.py), the
manifests applied as users apply them (kubectl apply -k, through an overlay that only swaps
the StorageClass's provisioner), the init Job and a Job from the backup CronJob run by
Kubernetes, and the server reached through a supervised port-forward."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from conformance import timeouts
from conformance.errors import EnvironmentProblem
from conformance.manifests import Manifests
from conformance.plan import figure
from conformance.targets import kind_cluster
from conformance.targets.kube import KubeTarget, job_outcome
from conformance.targets.waiting import wait_until

KIND_VERSION_RE = re.compile(r"kind v(\d+\.\d+\.\d+)")


def unavailable_reason() -> str | None:
    """None when kind, kubectl and a Docker engine are all here; else what is missing."""
    from conformance.targets import docker_engine

    missing = [tool for tool in ("kind", "kubectl") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found on PATH (kind {kind_cluster.KIND_VERSION}: https://kind.sigs.k8s.io)"
    reason = docker_engine.unavailable_reason()
    return f"kind needs a Docker engine: {reason}" if reason else None


class KindTarget(KubeTarget):
    name = "kind"

    def __init__(self, manifests: Manifests, keep: bool = False, progress=None, cluster: str | None = None,
                 manifests_dir: Path | None = None, workdir: Path | None = None, dump_dir: Path | None = None):
        self.cluster = cluster or kind_cluster.DEFAULT_CLUSTER
        # One work directory per cluster name: a kept cluster's node mounts its storage from it.
        super().__init__(manifests, f"kind-{self.cluster}", progress,
                         workdir or Path(tempfile.gettempdir()) / f"pc-conformance-kind-{self.cluster}", dump_dir)
        self.keep = keep
        self.manifests_dir = Path(manifests_dir or "manifests")
        self.storage_root = self.workdir / "node-storage"
        self._created = False

    # -- decisions (unit-tested) ----------------------------------------------------------
    def config_path(self) -> Path:
        path = self.workdir / "kind-config.yaml"
        path.write_text(yaml.safe_dump(kind_cluster.cluster_config(self.storage_root), sort_keys=False))
        return path

    def overlay_dir(self) -> Path:
        classes = [o.data for o in self.manifests.of_kind("StorageClass")]
        kind_cluster.overlay(self.manifests_dir, self.workdir / "overlay", classes)
        return self.workdir / "overlay"

    def node_paths(self, mounts):
        return {path: kind_cluster.node_path(self.storage_root, Path(local)) for path, local in (mounts or {}).items()}

    @property
    def backup_dir(self) -> Path:
        claim = figure("backup-pvc").expected
        found = kind_cluster.volume_dir(self.storage_root, self.kubectl.namespace, claim)
        if found is None:
            raise EnvironmentProblem(f"PVC {claim} has no volume directory under {self.storage_root} yet")
        return found

    # -- lifecycle ------------------------------------------------------------------------
    def _kind(self, *args: str, timeout: float = timeouts.KIND_CREATE) -> subprocess.CompletedProcess:
        proc = subprocess.run(["kind", *args], capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()
            raise EnvironmentProblem(f"kind {' '.join(args[:2])} failed: {last[-1] if last else proc.returncode}")
        return proc

    def _check_kind_version(self) -> None:
        out = self._kind("version", timeout=30).stdout
        match = KIND_VERSION_RE.search(out)
        if match and f"v{match.group(1)}" != kind_cluster.KIND_VERSION:
            self.progress(f"note: kind {match.group(0)} found; this suite pins {kind_cluster.KIND_VERSION} "
                          f"with {kind_cluster.NODE_IMAGE.split('@')[0]}")

    def start(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise EnvironmentProblem(f"the kind target cannot run here: {reason}")
        self._check_kind_version()
        self.storage_root.mkdir(parents=True, exist_ok=True)
        self.storage_root.chmod(0o777)
        clusters = self._kind("get", "clusters", timeout=30).stdout.split()
        if self.cluster in clusters:
            self.progress(f"reusing kind cluster {self.cluster}")
        else:
            self.progress(f"creating kind cluster {self.cluster} ({kind_cluster.NODE_IMAGE.split('@')[0]})")
            self._kind("create", "cluster", "--name", self.cluster, "--config", str(self.config_path()),
                       "--wait", f"{timeouts.KIND_CREATE}s")
            self._created = True
        try:
            self.progress("kubectl apply -k (manifests/ with the kind storage shim)")
            self.kubectl.run("apply", "-k", str(self.overlay_dir()), namespaced=False, timeout=timeouts.KUBECTL)
            self.wait_ready()
            job = figure("schema-job").expected
            self.progress(f"waiting for Job/{job}")
            outcome = wait_until(lambda: job_outcome(self.kubectl.get("job", job)), f"Job/{job} finished",
                                 timeouts.JOB_COMPLETE)
            if outcome != "Complete":
                raise EnvironmentProblem(f"Job/{job} failed")
            # Also binds the backup claim (its class waits for the first consumer).
            self.first_backup, _ = self.backup_from_cronjob()
        except BaseException as exc:
            path = self.failure_dump(str(exc))
            self.progress(f"failure dump: {path}")
            raise

    def stop(self) -> None:
        super().stop()
        if self._created and not self.keep:
            subprocess.run(["kind", "delete", "cluster", "--name", self.cluster], capture_output=True,
                           timeout=timeouts.KIND_CREATE, check=False)
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

