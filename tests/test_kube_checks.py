"""The Kubernetes-level checks' judges, fed the objects a healthy cluster returns (built from
the manifests) and objects broken the way each check guards against."""

from __future__ import annotations

import copy

import pytest

from conformance import manifests, registry, workload
from conformance.live import kube_checks as k
from conformance.live.runner import load_checks
from conformance.results import Result, Status
from tests.project import ROOT

M = manifests.load(ROOT / "manifests")
DB = workload.database(M)
POD_IP, CLUSTER_IP = "10.244.0.7", "10.96.41.2"


def healthy() -> dict:
    """What kubectl returns on a cluster running the manifests as they are."""
    template = copy.deepcopy(DB.owner.get(("spec", "template")))
    for container in template["spec"]["containers"]:
        for probe in k.PROBES:  # the API server fills in defaults
            if probe in container:
                container[probe].setdefault("successThreshold", 1)
                container[probe].setdefault("failureThreshold", 3)
    pod = {"metadata": {"name": "postgresql-product-change-0", "labels": template["metadata"]["labels"]},
           "spec": template["spec"],
           "status": {"podIP": POD_IP, "conditions": [{"type": "Ready", "status": "True"}]}}
    svc = copy.deepcopy(M.find("Service", "postgresql-product-change").data)
    svc["spec"]["clusterIP"] = CLUSTER_IP
    endpoints = {"subsets": [{"addresses": [{"ip": POD_IP}]}]}
    backup = copy.deepcopy(M.find("PersistentVolumeClaim", "postgresql-product-change-backup-pvc").data)
    backup["status"] = {"phase": "Bound", "capacity": {"storage": "10Gi"}}
    data = {"metadata": {"name": "postgresql-data-postgresql-product-change-0"},
            "spec": {"storageClassName": "managed-standard"}, "status": {"phase": "Bound", "capacity": {"storage": "20Gi"}}}
    return {"pod": pod, "svc": svc, "endpoints": endpoints, "resolved": CLUSTER_IP,
            "netpol": copy.deepcopy(M.find("NetworkPolicy", "postgresql-product-change").data),
            "claims": {"data": data, "backup": backup},
            "run": ("Complete", ["product_change_db_20261126_020000.dump"], {"product_change_db_20261126_020000.dump": True},
                    ["product_change_db_20261126_020000.dump"]),
            "cron": {"status": {"lastScheduleTime": "2026-11-25T17:00:00Z", "lastSuccessfulTime": "2026-11-25T17:00:41Z"}},
            "rows": 1, "cluster": ("dev", "phonebill-dev-aks")}


JUDGES = {
    "live-8.2-pod-ready": lambda o: k.judge_pod(o["pod"], DB),
    "live-3.1-limits-applied": lambda o: k.judge_limits(o["pod"], DB),
    "live-3.3-service": lambda o: k.judge_service(o["svc"], o["endpoints"], o["pod"], o["resolved"]),
    "live-9.1-network-policy": lambda o: k.judge_network_policy(o["netpol"], o["pod"]),
    "live-3.2-claims-bound": lambda o: k.judge_claims(o["claims"]),
    "live-7.2-cronjob-run": lambda o: k.judge_cronjob_run(*o["run"]) + k.judge_cronjob_status(o["cron"]),
    "live-5.1-survives-pod-delete": lambda o: k.judge_survival(o["rows"]),
    "live-2.1-cluster": lambda o: k.judge_cluster(*o["cluster"]),
}


def _c(o):
    return o["pod"]["spec"]["containers"][0]


def _set(path, value):
    def mutate(o):
        node = o
        for part in path[:-1]:
            node = node[part] if not callable(part) else part(node)
        node[path[-1]] = value
    return mutate


BREAKS = {
    "not ready": ("live-8.2-pod-ready", _set(("pod", "status", "conditions", 0, "status"), "False"),
                  ["Pod/postgresql-product-change-0", "status.conditions[Ready]", "expected True", "found False"]),
    "probe period": ("live-8.2-pod-ready", lambda o: _c(o)["readinessProbe"].update(periodSeconds=10),
                     ["containers[postgresql].readinessProbe.periodSeconds", "expected 5", "found 10"]),
    "no pod": ("live-8.2-pod-ready", lambda o: o.update(pod=None), ["no such pod"]),
    "memory limit": ("live-3.1-limits-applied", lambda o: _c(o)["resources"]["limits"].update(memory="1Gi"),
                     ["resources.limits.memory", "expected 2Gi (plan 3.1)", "found 1Gi"]),
    "cpu request": ("live-3.1-limits-applied", lambda o: _c(o)["resources"]["requests"].update(cpu="250m"),
                    ["resources.requests.cpu", "expected 500m", "found 250m"]),
    "no endpoint": ("live-3.3-service", lambda o: o.update(endpoints={"subsets": []}),
                    ["Service/postgresql-product-change", "endpoints", "no ready addresses"]),
    "dns": ("live-3.3-service", lambda o: o.update(resolved=None),
            ["DNS postgresql-product-change.phonebill-dev.svc.cluster.local", "does not resolve"]),
    "service type": ("live-3.3-service", lambda o: o["svc"]["spec"].update(type="NodePort"),
                     ["spec.type", "expected ClusterIP", "found NodePort"]),
    "no policy": ("live-9.1-network-policy", lambda o: o.update(netpol=None), ["NetworkPolicy/postgresql-product-change", "not found"]),
    "policy selects other pods": ("live-9.1-network-policy",
                                  lambda o: o["netpol"]["spec"]["podSelector"]["matchLabels"].update(tier="web"),
                                  ["spec.podSelector.matchLabels", "pod lacks {'tier': 'web'}"]),
    "claim pending": ("live-3.2-claims-bound", lambda o: o["claims"]["data"]["status"].update(phase="Pending"),
                      ["postgresql-data-postgresql-product-change-0", "status.phase", "expected Bound", "found Pending"]),
    "claim small": ("live-3.2-claims-bound", lambda o: o["claims"]["backup"]["status"]["capacity"].update(storage="5Gi"),
                    ["postgresql-product-change-backup-pvc.yaml", "status.capacity.storage", "expected >= 10Gi", "found 5Gi"]),
    "claim class": ("live-3.2-claims-bound", lambda o: o["claims"]["data"]["spec"].update(storageClassName="standard"),
                    ["spec.storageClassName", "expected managed-standard", "found standard"]),
    "backup job failed": ("live-7.2-cronjob-run", lambda o: o.update(run=("Failed",) + o["run"][1:]),
                          ["CronJob/postgresql-product-change-backup", "Job from the CronJob", "found Failed"]),
    "dump unreadable": ("live-7.2-cronjob-run", lambda o: o.update(run=("Complete", ["x.dump"], {"x.dump": False}, ["x.dump"])),
                        ["dump x.dump", "reads back whole (pg_restore --file=/dev/null)", "found does not"]),
    "no new dump": ("live-7.2-cronjob-run", lambda o: o.update(run=("Complete", [], {}, [])),
                    ["new dumps on the backup volume", "expected exactly one, from this run", "found none"]),
    "two new dumps": ("live-7.2-cronjob-run", lambda o: o.update(run=("Complete", ["a.dump", "b.dump"],
                                                                      {"a.dump": True, "b.dump": True}, ["b.dump"])),
                      ["new dumps on the backup volume", "found 2: ['a.dump', 'b.dump']"]),
    "last run failed": ("live-7.2-cronjob-run", lambda o: o["cron"]["status"].update(lastSuccessfulTime="2026-11-20T17:00:30Z"),
                        ["status.lastSuccessfulTime", "at or after the last run 2026-11-25T17:00:00Z"]),
    "another cluster": ("live-2.1-cluster", lambda o: o.update(cluster=("dev", "phonebill-prod-aks")),
                        ["kubeconfig", "context dev cluster", "expected phonebill-dev-aks (plan 2.1)",
                         "found phonebill-prod-aks"]),
    "data lost": ("live-5.1-survives-pod-delete", lambda o: o.update(rows=0),
                  ["StatefulSet/postgresql-product-change", "rows after a pod delete", "expected 1", "found 0"]),
}


def _result(check_id: str, findings) -> Result:
    check = registry.LIVE[check_id]
    return Result(check.id, check.section, check.title, Status.FAILED if findings else Status.PASSED, list(findings))


load_checks()
KUBE_IDS = sorted(cid for cid, c in registry.LIVE.items() if c.func.__module__ == "conformance.live.kube_checks")


def test_every_kube_check_has_a_judge_and_a_break():
    assert set(KUBE_IDS) == set(JUDGES)
    assert set(KUBE_IDS) == {check_id for check_id, _, _ in BREAKS.values()}


@pytest.mark.parametrize("check_id", KUBE_IDS)
def test_judge_passes_a_healthy_cluster(check_id):
    assert JUDGES[check_id](healthy()) == []


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_judge_fails_a_broken_cluster(name):
    check_id, mutate, fragments = BREAKS[name]
    objects = healthy()
    mutate(objects)
    result = _result(check_id, JUDGES[check_id](objects))
    assert result.status is Status.FAILED
    text = "\n".join(result.lines())
    assert f"{check_id} (plan {result.section})" in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_a_cronjob_that_never_ran_is_not_a_pass():
    """The read-only form used to pass a CronJob with no status at all: it has shown nothing."""
    from conformance.registry import Skip

    with pytest.raises(Skip, match="has not run yet"):
        k.judge_cronjob_status({"status": {}})
