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


def _effective(pod_spec: dict, container: dict, field: str):
    value = (container.get("securityContext") or {}).get(field)
    return (pod_spec.get("securityContext") or {}).get(field) if value is None else value


@static("plan-9.1-non-root", "9.1", "every container runs as a non-root user")
def non_root(ctx):
    for obj, _, spec, path, c in _containers(ctx):
        if _effective(spec, c, "runAsNonRoot") is not True:
            yield ctx.finding(obj, path + ("securityContext", "runAsNonRoot"), True, _effective(spec, c, "runAsNonRoot"))
        uid = _effective(spec, c, "runAsUser")
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


@static("plan-9.1-network-policy", "9.1", "only pods of phonebill-dev may reach port 5432")
def network_policy(ctx):
    policies = ctx.manifests.of_kind("NetworkPolicy")
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
