"""What the kind and cluster targets share: the server reached through a supervised
port-forward, probes and scripts run by Kubernetes itself (kubectl exec, Jobs), status
polled with bounds, and a failure dump on the way out of a failed start.

Job building (job_for) is pure and unit-tested: the script's container as the manifests
define it, with env overrides and local directories mounted through the kind node."""

from __future__ import annotations

import copy
import json
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from conformance import timeouts, workload
from conformance.errors import EnvironmentProblem
from conformance.manifests import Manifests
from conformance.plan import figure
from conformance.registry import Skip
from conformance.targets import configmaps
from conformance.targets.base import Target
from conformance.targets.failure_dump import dump
from conformance.targets.kubectl import Kubectl
from conformance.targets.port_forward import PortForward
from conformance.targets.waiting import NotYet, wait_until

LOCAL_HOST = "127.0.0.1"


def statefulset_ready(sts: dict | None) -> bool:
    """All desired replicas Ready and of the current revision (a rollout finished)."""
    if not sts:
        raise NotYet("StatefulSet not found")
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    want = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    if status.get("observedGeneration", 0) < (sts.get("metadata") or {}).get("generation", 0):
        raise NotYet("controller has not observed the latest spec")
    if ready != want or status.get("updatedReplicas", want) != want:
        raise NotYet(f"{ready}/{want} replicas ready")
    return True


def job_outcome(job: dict | None) -> str:
    """'Complete' or 'Failed' once the Job ended; NotYet while it runs."""
    if not job:
        raise NotYet("Job not found")
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"]
    status = job.get("status") or {}
    raise NotYet(f"active {status.get('active', 0)}, failed {status.get('failed', 0)}")


def job_for(container: workload.Container, name: str, env: dict | None = None,
            host_paths: dict[str, str] | None = None, labels: dict | None = None) -> dict:
    """A one-shot Job running this container as the manifests define it (its pod's security
    context, volumes, resources), with env values replaced and some mounts replaced by node
    paths (container path -> path on the node)."""
    pod = copy.deepcopy(workload.pod_spec(container.owner))
    spec = copy.deepcopy(container.spec)
    spec_env = list(spec.get("env") or [])
    for key, value in (env or {}).items():
        spec_env = [e for e in spec_env if e.get("name") != key] + [{"name": key, "value": str(value)}]
    spec["env"] = spec_env
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    by_path = {m["mountPath"]: m for m in spec.get("volumeMounts") or []}
    for path, node_path in (host_paths or {}).items():
        if path not in by_path:
            raise ValueError(f"{container.owner.ref} container {container.name} mounts nothing at {path}")
        volume = by_path[path]["name"]
        volumes[volume] = {"name": volume, "hostPath": {"path": node_path, "type": "Directory"}}
    pod["volumes"] = list(volumes.values())
    pod["containers"] = [spec]
    pod["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": container.owner.namespace or figure("namespace").expected,
                     "labels": dict(labels or {})},
        "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 600,
                 "template": {"metadata": {"labels": dict(labels or {})}, "spec": pod}},
    }


class KubeTarget(Target):
    """A StatefulSet already applied to a cluster, reached through kubectl."""

    LABEL = "conformance.phonebill.io/run"

    def __init__(self, manifests: Manifests, context: str, progress=None, workdir: Path | None = None,
                 dump_dir: Path | None = None, pg_major: int | None = None):
        super().__init__(manifests, pg_major)
        self.db = workload.database(manifests)
        self.kubectl = Kubectl(context, figure("namespace").expected)
        self.progress = progress or (lambda message: None)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="pc-conformance-kube-"))
        self.dump_dir = Path(dump_dir) if dump_dir else Path("reports")
        self.run_id = secrets.token_hex(3)
        self.forward: PortForward | None = None
        self.metrics_forward: PortForward | None = None
        self._jobs = 0

    # -- names ----------------------------------------------------------------------------
    @property
    def statefulset(self) -> str:
        return self.db.owner.name

    @property
    def pod(self) -> str:
        return f"{self.statefulset}-0"

    @property
    def replicas(self) -> int:
        return int(self.db.owner.get(("spec", "replicas")) or 1)

    # -- reaching the server --------------------------------------------------------------
    @property
    def host(self) -> str:
        return LOCAL_HOST

    @property
    def port(self) -> int:
        if self.forward is None:
            raise EnvironmentProblem("no port-forward to the server")
        return self.forward.local_port

    def _port_forward(self, remote: int) -> PortForward:
        forward = PortForward(lambda local: self.kubectl.argv("port-forward", f"pod/{self.pod}", f"{local}:{remote}",
                                                              "--address", LOCAL_HOST), remote)
        forward.start()
        return forward

    def wait_ready(self) -> None:
        self.progress(f"waiting for StatefulSet/{self.statefulset} to be ready")
        wait_until(lambda: statefulset_ready(self.kubectl.get("statefulset", self.statefulset)),
                   f"StatefulSet/{self.statefulset} ready", timeouts.STATEFULSET_READY)
        if self.forward is None:
            self.forward = self._port_forward(figure("port").expected)
        self._wait_query()

    def _wait_query(self) -> None:
        import psycopg

        def answered():
            with psycopg.connect(**{**self.conninfo("superuser", dbname="postgres"), "connect_timeout": 3}) as conn:
                return conn.execute("SELECT 1").fetchone()[0] == 1

        wait_until(answered, f"the server answering through port-forward {self.host}:{self.port}",
                   timeouts.SERVER_READY, retry_on=(psycopg.OperationalError,))

    def metrics_url(self) -> str:
        if self.metrics_forward is None:
            self.metrics_forward = self._port_forward(figure("metrics-port").expected)
        return f"http://{LOCAL_HOST}:{self.metrics_forward.local_port}/metrics"

    def failure_dump(self, reason: str) -> Path:
        path = self.dump_dir / f"kube-failure-{self.kubectl.context}-{self.run_id}.txt"
        return dump(self.kubectl, path, reason)

    # -- probes, logs ---------------------------------------------------------------------
    def run_probe(self, probe: str) -> int:
        argv = self.db.probe_command(probe)
        if not argv:
            return -1
        proc = self.kubectl.run("exec", self.pod, "-c", self.db.name, "--", *argv, check=False,
                                timeout=timeouts.PROBE)
        return proc.returncode

    def log_files(self) -> dict[str, str]:
        log_dir = f"{self.db.env['PGDATA']}/log"
        listing = self.kubectl.run("exec", self.pod, "-c", self.db.name, "--", "ls", "-1", log_dir, check=False)
        files = {}
        for name in listing.stdout.split():
            text = self.kubectl.run("exec", self.pod, "-c", self.db.name, "--", "cat", f"{log_dir}/{name}",
                                    check=False).stdout
            files[name] = text
        return files

    # -- writes ---------------------------------------------------------------------------
    def stop_server(self) -> None:
        self.kubectl.run("scale", f"statefulset/{self.statefulset}", "--replicas=0")
        wait_until(lambda: self.kubectl.get("pod", self.pod) is None, f"pod {self.pod} gone", timeouts.POD_GONE)

    def start_server(self, new_pod: bool = True) -> None:
        self.kubectl.run("scale", f"statefulset/{self.statefulset}", f"--replicas={self.replicas}")
        self.wait_ready()

    def delete_pod(self) -> None:
        self.kubectl.run("delete", "pod", self.pod, "--wait=true")
        self.wait_ready()

    def node_paths(self, mounts: dict[str, Path] | None) -> dict[str, str]:
        """Container path -> node path for local directories; only kind can mount them, so a
        check that needs it cannot judge here."""
        if mounts:
            raise Skip(f"the {self.name} target cannot mount local directories into a pod")
        return {}

    def run_script(self, container, env=None, mounts=None, timeout=timeouts.SCRIPT):
        self._jobs += 1
        name = f"{container.owner.name[:40]}-c{self.run_id}-{self._jobs}"
        manifest = job_for(container, name, env, self.node_paths(mounts), {self.LABEL: self.run_id})
        self.kubectl.run("create", "-f", "-", input=json.dumps(manifest))
        try:
            outcome = wait_until(lambda: job_outcome(self.kubectl.get("job", name)), f"Job/{name} finished",
                                 min(timeout, timeouts.JOB_COMPLETE))
            logs = self.kubectl.run("logs", f"job/{name}", "--all-containers", check=False).stdout
            code = self._exit_code(name) if outcome == "Failed" else 0
        finally:
            self.kubectl.run("delete", "job", name, "--wait=false", "--cascade=foreground", check=False)
        # Kubernetes keeps one stream per container: both are the pod's log.
        return subprocess.CompletedProcess([name], code, logs, logs)

    def backup_from_cronjob(self) -> tuple[str, str]:
        """A Job made from the backup CronJob, as Kubernetes makes the 02:00 one: (its outcome,
        its log). The Job is deleted afterwards (its dump stays)."""
        cron = figure("backup-cronjob").expected
        self._jobs += 1
        name = f"{cron[:40]}-manual-{self.run_id}-{self._jobs}"
        self.kubectl.run("create", "job", name, f"--from=cronjob/{cron}")
        try:
            outcome = wait_until(lambda: job_outcome(self.kubectl.get("job", name)), f"Job/{name} finished",
                                 timeouts.JOB_COMPLETE)
            log = self.kubectl.run("logs", f"job/{name}", check=False).stdout
        finally:
            self.kubectl.run("delete", "job", name, "--wait=false", "--cascade=foreground", check=False)
        return outcome, log

    def _exit_code(self, job: str) -> int:
        pods = self.kubectl.json("get", "pods", "-l", f"job-name={job}")
        for pod in pods.get("items") or []:
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated") or {}
                if terminated.get("exitCode"):
                    return int(terminated["exitCode"])
        return 1

    # -- local views of the cluster's files -----------------------------------------------
    @property
    def sql_dir(self) -> Path:
        path = self.workdir / "sql"
        return path if path.exists() else configmaps.write_schema_sql(self.manifests, path)

    def stop(self) -> None:
        for forward in (self.forward, self.metrics_forward):
            if forward is not None:
                forward.stop()
        self.forward = self.metrics_forward = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
