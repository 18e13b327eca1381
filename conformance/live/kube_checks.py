"""Kubernetes-level live checks: what only a cluster shows (kind, or an existing cluster).
Each check fetches objects with kubectl and hands them to a judge, a pure function of the
objects and the manifests, which the tests feed broken objects. On native and docker they
are skipped with the reason."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conformance.quantity import parse_quantity

from conformance import workload
from conformance.plan import figure
from conformance.registry import Skip, live
from conformance.results import Finding

STS_FILE = "postgresql-product-change-statefulset.yaml"
SVC_FILE = "postgresql-product-change-service.yaml"
NETPOL_FILE = "postgresql-product-change-networkpolicy.yaml"
CRON_FILE = "postgresql-product-change-backup-cronjob.yaml"
PVC_FILE = "postgresql-product-change-backup-pvc.yaml"
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")


def _kube(ctx):
    kubectl = getattr(ctx.target, "kubectl", None)
    if kubectl is None:
        raise Skip(f"needs a Kubernetes target (kind or cluster); this is {ctx.target.name}")
    return kubectl


def _f(file, obj, path, expected, found) -> Finding:
    return Finding(file=file, obj=obj, path=path, expected=str(expected), found=str(found))


def _container(pod: dict, name: str) -> dict:
    return next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name), {})


# -- judges ---------------------------------------------------------------------------------

def judge_pod(pod: dict | None, db: workload.Container) -> list[Finding]:
    """The pod is Ready, and runs the manifests' probes (fields the manifests set, compared
    as applied: the API server adds defaults for the rest)."""
    name = f"{db.owner.name}-0"
    if not pod:
        return [_f(STS_FILE, f"Pod/{name}", "status", "exists and Ready", "no such pod")]
    out = []
    conditions = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    if conditions.get("Ready") != "True":
        out.append(_f(STS_FILE, f"Pod/{name}", "status.conditions[Ready]", "True", conditions.get("Ready")))
    applied = _container(pod, db.name)
    for probe in PROBES:
        want = db.spec.get(probe) or {}
        have = applied.get(probe) or {}
        diff = {k: (v, have.get(k)) for k, v in want.items() if have.get(k) != v}
        for key, (expected, found) in diff.items():
            out.append(_f(STS_FILE, f"Pod/{name}", f"containers[{db.name}].{probe}.{key}", expected, found))
    return out


def judge_limits(pod: dict | None, db: workload.Container) -> list[Finding]:
    """Requests and limits as applied equal the plan's figures (3.1)."""
    name = f"{db.owner.name}-0"
    resources = _container(pod or {}, db.name).get("resources") or {}
    out = []
    for key, path in (("cpu-request", ("requests", "cpu")), ("cpu-limit", ("limits", "cpu")),
                      ("memory-request", ("requests", "memory")), ("memory-limit", ("limits", "memory"))):
        want = figure(key).expected
        have = (resources.get(path[0]) or {}).get(path[1])
        if have is None or parse_quantity(have) != parse_quantity(want):
            out.append(_f(STS_FILE, f"Pod/{name}", f"containers[{db.name}].resources.{'.'.join(path)}",
                          f"{want} (plan {figure(key).section})", have))
    return out


def judge_service(svc: dict | None, endpoints: dict | None, pod: dict | None, resolved: str | None) -> list[Finding]:
    """The Service is ClusterIP on the plan's port, its endpoints hold the pod's IP, and its
    DNS name resolves (from inside the pod) to its cluster IP (3.3, 14.1)."""
    name = figure("name").expected
    obj = f"Service/{name}"
    if not svc:
        return [_f(SVC_FILE, obj, "metadata.name", "exists", "no such Service")]
    out = []
    spec = svc.get("spec") or {}
    if spec.get("type") != figure("service-type").expected:
        out.append(_f(SVC_FILE, obj, "spec.type", figure("service-type").expected, spec.get("type")))
    ports = [p.get("port") for p in spec.get("ports") or []]
    if figure("port").expected not in ports:
        out.append(_f(SVC_FILE, obj, "spec.ports[].port", figure("port").expected, ports))
    pod_ip = ((pod or {}).get("status") or {}).get("podIP")
    addresses = [a.get("ip") for s in (endpoints or {}).get("subsets") or [] for a in s.get("addresses") or []]
    if not pod_ip or pod_ip not in addresses:
        out.append(_f(SVC_FILE, obj, "endpoints", f"the pod's IP {pod_ip}", addresses or "no ready addresses"))
    if resolved != spec.get("clusterIP"):
        out.append(_f(SVC_FILE, obj, f"DNS {figure('dns-name').expected}", spec.get("clusterIP"), resolved or "does not resolve"))
    return out


def judge_network_policy(policy: dict | None, pod: dict | None) -> list[Finding]:
    name = figure("name").expected
    obj = f"NetworkPolicy/{name}"
    if not policy:
        return [_f(NETPOL_FILE, obj, "metadata.name", "exists in the cluster", "not found")]
    selector = ((policy.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
    labels = ((pod or {}).get("metadata") or {}).get("labels") or {}
    missing = {k: v for k, v in selector.items() if labels.get(k) != v}
    if not selector or missing:
        return [_f(NETPOL_FILE, obj, "spec.podSelector.matchLabels", "selects the database pod",
                   f"does not: pod lacks {missing}" if missing else "selects every pod")]
    return []


def judge_claims(claims: dict[str, dict | None]) -> list[Finding]:
    """Data and backup claims Bound, of the plan's size and class (3.2)."""
    out = []
    figures = {"data": ("data-volume-size", "data-volume-class", STS_FILE),
               "backup": ("backup-volume-size", "backup-volume-class", PVC_FILE)}
    for role, pvc in claims.items():
        size_key, class_key, file = figures[role]
        obj = f"PersistentVolumeClaim/{((pvc or {}).get('metadata') or {}).get('name', role)}"
        if not pvc:
            out.append(_f(file, obj, "metadata.name", "exists", "not found"))
            continue
        phase = (pvc.get("status") or {}).get("phase")
        if phase != "Bound":
            out.append(_f(file, obj, "status.phase", "Bound", phase))
        capacity = ((pvc.get("status") or {}).get("capacity") or {}).get("storage")
        if capacity is None or parse_quantity(capacity) < parse_quantity(figure(size_key).expected):
            out.append(_f(file, obj, "status.capacity.storage", f">= {figure(size_key).expected}", capacity))
        if (pvc.get("spec") or {}).get("storageClassName") != figure(class_key).expected:
            out.append(_f(file, obj, "spec.storageClassName", figure(class_key).expected,
                          (pvc.get("spec") or {}).get("storageClassName")))
    return out


def judge_cronjob_run(outcome: str | None, new_dumps: list[str], verified: dict[str, bool],
                      logged: list[str]) -> list[Finding]:
    """The Job this check created from the CronJob completed and left exactly one new dump, the
    one its log names, and that dump reads back whole."""
    obj = f"CronJob/{figure('backup-cronjob').expected}"
    out = []
    if outcome != "Complete":
        out.append(_f(CRON_FILE, obj, "Job from the CronJob", "Complete", outcome))
    if len(new_dumps) != 1:
        out.append(_f(CRON_FILE, obj, "new dumps on the backup volume", "exactly one, from this run",
                      f"{len(new_dumps)}: {new_dumps}" if new_dumps else "none"))
    if sorted(logged) != sorted(new_dumps):
        out.append(_f(CRON_FILE, obj, "the Job's log", f"names the new dump {new_dumps}", f"names {logged}"))
    for name in new_dumps:
        if not verified.get(name):
            out.append(_f(CRON_FILE, obj, f"dump {name}", "reads back whole (pg_restore --file=/dev/null)", "does not"))
    return out


def judge_cluster(context: str, cluster: str | None) -> list[Finding]:
    """The kubectl context points at the plan's cluster (2.1): `az aks get-credentials` names
    the kubeconfig cluster after the AKS cluster."""
    if cluster != figure("cluster").expected:
        return [_f("kubeconfig", f"context {context}", "cluster", f"{figure('cluster').expected} (plan 2.1)",
                   cluster or "none")]
    return []


def judge_survival(rows: int) -> list[Finding]:
    if rows != 1:
        return [_f(STS_FILE, f"StatefulSet/{figure('name').expected}", "rows after a pod delete", 1, rows)]
    return []


def judge_cronjob_status(cron: dict | None) -> list[Finding]:
    """Read-only form for an existing cluster: the last scheduled run succeeded. A CronJob
    that never ran has shown nothing: Skip, never a pass."""
    obj = f"CronJob/{figure('backup-cronjob').expected}"
    if not cron:
        return [_f(CRON_FILE, obj, "metadata.name", "exists", "not found")]
    status = cron.get("status") or {}
    last, ok = status.get("lastScheduleTime"), status.get("lastSuccessfulTime")
    if not last and not ok:
        raise Skip(f"{obj} has not run yet: nothing shows that it completes (--allow-writes starts a run)")
    if not ok or (last and ok < last):
        return [_f(CRON_FILE, obj, "status.lastSuccessfulTime", f"at or after the last run {last}", ok)]
    return []


# -- checks ---------------------------------------------------------------------------------

def _pod(ctx):
    return _kube(ctx).get("pod", ctx.target.pod)


@live("live-8.2-pod-ready", "8.2", "the pod is Ready and runs the plan's probes as applied",
      checklist=("14.1-statefulset-ready", "14.3-health-checks"))
def pod_ready(ctx):
    _kube(ctx)
    return judge_pod(_pod(ctx), workload.database(ctx.manifests))


@live("live-2.1-cluster", "2.1", "the cluster the checks run on is the plan's (phonebill-dev-aks)")
def cluster(ctx):
    kubectl = _kube(ctx)
    if ctx.target.name != "cluster":
        raise Skip(f"the {ctx.target.name} target makes its own cluster: only the cluster target reaches the plan's")
    proc = kubectl.run("config", "view", "--minify", "-o", "jsonpath={.clusters[0].name}", check=False,
                       namespaced=False)
    return judge_cluster(kubectl.context, proc.stdout.strip() if proc.returncode == 0 else None)


@live("live-3.1-limits-applied", "3.1", "CPU and memory requests and limits as applied to the pod")
def limits_applied(ctx):
    _kube(ctx)
    return judge_limits(_pod(ctx), workload.database(ctx.manifests))


@live("live-3.3-service", "3.3", "the Service has the pod as endpoint and its DNS name resolves",
      checklist=("14.1-service-endpoint",))
def service(ctx):
    kubectl = _kube(ctx)
    name = figure("name").expected
    pod = _pod(ctx)
    proc = kubectl.run("exec", ctx.target.pod, "-c", workload.database(ctx.manifests).name, "--",
                       "getent", "hosts", figure("dns-name").expected, check=False)
    resolved = proc.stdout.split()[0] if proc.returncode == 0 and proc.stdout.split() else None
    return judge_service(kubectl.get("service", name), kubectl.get("endpoints", name), pod, resolved)


@live("live-9.1-network-policy", "9.1", "the NetworkPolicy exists in the cluster and selects the database pod")
def network_policy(ctx):
    kubectl = _kube(ctx)
    return judge_network_policy(kubectl.get("networkpolicy", figure("name").expected), _pod(ctx))


@live("live-3.2-claims-bound", "3.2", "data and backup volume claims Bound with the plan's size and class")
def claims_bound(ctx):
    kubectl = _kube(ctx)
    template = (workload.database(ctx.manifests).owner.get(("spec", "volumeClaimTemplates")) or [{}])[0]
    data_claim = f"{template.get('metadata', {}).get('name')}-{ctx.target.pod}"
    return judge_claims({"data": kubectl.get("pvc", data_claim), "backup": kubectl.get("pvc", figure("backup-pvc").expected)})


_BACKUP_COMPLETED = re.compile(r"^Backup completed: \S*/([^/ ]+\.dump) ", re.M)


@live("live-7.2-cronjob-run", "7.2", "a Job from the backup CronJob, started by the check, completes and writes "
      "exactly one new dump that reads back whole", checklist=("14.3-backup",))
def cronjob_run(ctx):
    kubectl = _kube(ctx)
    if not ctx.allow_writes:
        return judge_cronjob_status(kubectl.get("cronjob", figure("backup-cronjob").expected))
    try:
        backup_dir = Path(ctx.target.backup_dir)
    except Skip:
        backup_dir = None  # an existing cluster's volume: what the Job's log says is what we know
    before = {p.name for p in backup_dir.glob("*.dump")} if backup_dir else set()
    outcome, log = ctx.target.backup_from_cronjob()
    logged = _BACKUP_COMPLETED.findall(log)
    if backup_dir is None:
        # The script prints "Backup completed" only after it read the whole dump back.
        return judge_cronjob_run(outcome, logged, {name: True for name in logged}, logged)
    new = sorted({p.name for p in backup_dir.glob("*.dump")} - before)
    from conformance.pg.binaries import locate

    pg_restore = locate().tool("pg_restore")
    verified = {name: subprocess.run([pg_restore, "--file=/dev/null", str(backup_dir / name)], capture_output=True,
                                     check=False).returncode == 0 for name in new}
    return judge_cronjob_run(outcome, new, verified, logged)


@live("live-5.1-survives-pod-delete", "5.1", "data written before a pod delete is there after the StatefulSet recreates it",
      checklist=("14.1-statefulset-ready",))
def survives_pod_delete(ctx):
    _kube(ctx)
    if not ctx.allow_writes:
        raise Skip("deleting the pod needs --allow-writes")
    table = f"{figure('schema').expected}.pc_kos_integration_log"
    marker = f"pod-delete-{ctx.target.run_id}"
    with ctx.connect("app") as conn:
        conn.execute("SET synchronous_commit = on")  # durable, whatever the dev tuning says
        conn.execute(f"INSERT INTO {table} (request_id, integration_type, method, endpoint_url) "
                     "VALUES (%s, 'CUSTOMER_INFO', 'GET', '/check')", (marker,))
    ctx.target.delete_pod()
    try:
        yield from judge_survival(ctx.query(f"SELECT count(*) FROM {table} WHERE request_id = %s", (marker,))[0][0])
    finally:
        with ctx.connect("admin") as conn:
            conn.execute(f"DELETE FROM {table} WHERE request_id = %s", (marker,))
