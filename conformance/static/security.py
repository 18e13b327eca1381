"""Security posture of every workload (plan 9.1: least privilege; restricted pod security)."""

from __future__ import annotations

from conformance import workload
from conformance.plan import figure
from conformance.registry import static


def _pods(ctx):
    for obj in ctx.manifests.objects:
        if obj.kind in workload.POD_SPEC:
            base = workload.POD_SPEC[obj.kind]
            yield obj, base, workload.pod_spec(obj)


def _containers(ctx):
    for obj, base, spec in _pods(ctx):
        for group in ("initContainers", "containers"):
            for i, c in enumerate(spec.get(group) or []):
                yield obj, base, spec, base + (group, i), c


def effective(pod_spec: dict, container: dict, field: str):
    """A securityContext field as it applies to the container: its own, else the pod's."""
    value = (container.get("securityContext") or {}).get(field)
    return (pod_spec.get("securityContext") or {}).get(field) if value is None else value


@static("plan-9.1-non-root", "9.1", "every container runs as a non-root user")
def non_root(ctx):
    for obj, _, spec, path, c in _containers(ctx):
        if effective(spec, c, "runAsNonRoot") is not True:
            yield ctx.finding(obj, path + ("securityContext", "runAsNonRoot"), True, effective(spec, c, "runAsNonRoot"))
        uid = effective(spec, c, "runAsUser")
        if uid == 0:
            yield ctx.finding(obj, path + ("securityContext", "runAsUser"), "a non-zero uid", uid)


@static("plan-9.1-no-privilege-escalation", "9.1", "no container may escalate privileges")
def no_escalation(ctx):
    for obj, _, spec, path, c in _containers(ctx):
        value = (c.get("securityContext") or {}).get("allowPrivilegeEscalation")
        if value is not False:
            yield ctx.finding(obj, path + ("securityContext", "allowPrivilegeEscalation"), False, value)
        if (c.get("securityContext") or {}).get("privileged"):
            yield ctx.finding(obj, path + ("securityContext", "privileged"), False, True)


@static("plan-9.1-capabilities-dropped", "9.1", "every container drops all capabilities")
def capabilities(ctx):
    for obj, _, spec, path, c in _containers(ctx):
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            yield ctx.finding(obj, path + ("securityContext", "capabilities", "drop"), ["ALL"], caps.get("drop"))
        if caps.get("add"):
            yield ctx.finding(obj, path + ("securityContext", "capabilities", "add"), "nothing", caps.get("add"))


@static("plan-9.1-seccomp", "9.1", "every pod uses the RuntimeDefault seccomp profile")
def seccomp(ctx):
    for obj, base, spec, path, c in _containers(ctx):
        profile = ((c.get("securityContext") or {}).get("seccompProfile")
                   or (spec.get("securityContext") or {}).get("seccompProfile") or {})
        if profile.get("type") not in ("RuntimeDefault", "Localhost"):
            yield ctx.finding(obj, base + ("securityContext", "seccompProfile", "type"), "RuntimeDefault", profile.get("type"))


@static("plan-9.1-no-service-account-token", "9.1", "no pod mounts a service-account token")
def no_token(ctx):
    for obj, base, spec in _pods(ctx):
        if spec.get("automountServiceAccountToken") is not False:
            yield ctx.finding(obj, base + ("automountServiceAccountToken",), False, spec.get("automountServiceAccountToken"))


@static("plan-3.1-resources-everywhere", "3.1", "every container has CPU and memory requests and limits")
def resources(ctx):
    for obj, _, spec, path, c in _containers(ctx):
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for name in ("cpu", "memory"):
                if (res.get(kind) or {}).get(name) is None:
                    yield ctx.finding(obj, path + ("resources", kind, name), "a value", None)


def _selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects these labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def _database_labels(ctx) -> dict:
    return workload.pod_spec_labels(workload.database(ctx.manifests).owner)


@static("plan-9.1-network-policy", "9.1", "only pods of phonebill-dev may reach port 5432")
def network_policy(ctx):
    # The policies of the database pod; the Job pods' policy is plan-9.1-job-network-policy's.
    policies = [p for p in ctx.manifests.of_kind("NetworkPolicy")
                if _selects(p.get(("spec", "podSelector")) or {}, _database_labels(ctx))]
    if not policies:
        yield ctx.finding(None, (), "a NetworkPolicy (plan 9.1 lists one)", "none")
        return
    namespace = figure("network-policy").expected
    for pol in policies:
        if pol.namespace != namespace:
            yield ctx.finding(pol, ("metadata", "namespace"), namespace, pol.namespace)
        if "Ingress" not in (pol.get(("spec", "policyTypes")) or []):
            yield ctx.finding(pol, ("spec", "policyTypes"), ["Ingress"], pol.get(("spec", "policyTypes")))
        rules = pol.get(("spec", "ingress")) or []
        if not rules:
            yield ctx.finding(pol, ("spec", "ingress"), "a rule admitting the namespace's pods", "none (denies all)")
        for i, rule in enumerate(rules):
            sources = rule.get("from")
            ports = [p.get("port") for p in rule.get("ports") or []]
            if ports == [figure("metrics-port").expected]:
                # Our addition (8.1): Prometheus's namespace may scrape the metrics port, nothing else.
                allowed = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                                                                 figure("metrics-namespace").expected}}}
                if sources != [allowed]:
                    yield ctx.finding(pol, ("spec", "ingress", i, "from"),
                                      f"namespace {figure('metrics-namespace').expected} only", sources or "any source")
                continue
            if not sources:
                yield ctx.finding(pol, ("spec", "ingress", i, "from"), f"pods of {namespace} only", "any source")
            for j, src in enumerate(sources or []):
                if "ipBlock" in src or "namespaceSelector" in src and \
                        (src["namespaceSelector"].get("matchLabels") or {}) != {"kubernetes.io/metadata.name": namespace}:
                    yield ctx.finding(pol, ("spec", "ingress", i, "from", j), f"pods of {namespace} only", src)
            if ports != [figure("port").expected]:
                yield ctx.finding(pol, ("spec", "ingress", i, "ports"), [figure("port").expected], ports)


DNS_PORT = 53


@static("plan-9.1-job-network-policy", "9.1", "the Job pods: no ingress; egress only to the database's port and DNS; "
        "no other service's pods selected")
def job_network_policy(ctx):
    database = _database_labels(ctx)
    policies = ctx.manifests.of_kind("NetworkPolicy")
    for obj in ctx.manifests.objects:
        if obj.kind not in ("Job", "CronJob"):
            continue
        labels = workload.pod_spec_labels(obj)
        path = workload.POD_SPEC[obj.kind][:-1] + ("metadata", "labels")
        isolating = [p for p in policies if _selects(p.get(("spec", "podSelector")) or {}, labels)
                     and {"Ingress", "Egress"} <= set(p.get(("spec", "policyTypes")) or [])]
        if not isolating:
            yield ctx.finding(obj, path, "its pods selected by a NetworkPolicy with Ingress and Egress (plan 9.1)",
                              "none selects them")
        for pol in isolating:
            if pol.get(("spec", "ingress")):
                yield ctx.finding(pol, ("spec", "ingress"), "no ingress to a Job pod", pol.get(("spec", "ingress")))
            for i, rule in enumerate(pol.get(("spec", "egress")) or []):
                ports = sorted((p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports") or [])
                targets = rule.get("to") or []
                to_database = ports == [("TCP", figure("port").expected)] and targets and all(
                    set(t) == {"podSelector"} and _selects(t["podSelector"], database) for t in targets)
                to_dns = ports and {port for _, port in ports} == {DNS_PORT} and targets and all(
                    (t.get("namespaceSelector") or {}).get("matchLabels") == {"kubernetes.io/metadata.name": "kube-system"}
                    for t in targets)
                if not (to_database or to_dns):
                    yield ctx.finding(pol, ("spec", "egress", i), f"egress only to the database on {figure('port').expected} "
                                      "or to kube-system's DNS on 53", rule)
    ours = figure("labels").expected["app"]
    for pol in policies:
        selector = pol.get(("spec", "podSelector")) or {}
        if (selector.get("matchLabels") or {}).get("app") != ours:
            yield ctx.finding(pol, ("spec", "podSelector"), f"app={ours} in matchLabels: our pods only "
                              "(phonebill-dev is shared)", selector or "every pod of the namespace")
