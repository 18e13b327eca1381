"""Integrity of references across objects: what one object names, another must provide."""

from __future__ import annotations

from conformance import workload
from conformance.manifests import KUSTOMIZATION
from conformance.plan import INSTALL_STEP_FILES, figure
from conformance.registry import static
from conformance.results import Finding
from conformance.static import wraps_missing

WORKLOADS = tuple(workload.POD_SPEC)


def _workloads(ctx):
    return [o for o in ctx.manifests.objects if o.kind in WORKLOADS]


def _pod_labels(obj) -> dict:
    if obj.kind == "CronJob":
        return obj.get(("spec", "jobTemplate", "spec", "template", "metadata", "labels")) or {}
    return obj.get(("spec", "template", "metadata", "labels")) or {}


def _matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@static("plan-10.2-kustomization-resources", "10.2", "kustomization.yaml lists every manifest file",
        checklist=("14.1-secret-configmap",))
def kustomization_resources(ctx):
    if ctx.manifests.kustomization is None:
        yield Finding(str(ctx.manifests.root), "Kustomization", "-", f"a {KUSTOMIZATION}", "none")
        return
    listed = set(ctx.manifests.kustomization.get("resources") or [])
    for name in ctx.manifests.files:
        if name not in listed:
            yield Finding(KUSTOMIZATION, "Kustomization", "resources", f"{name} listed (else kubectl apply -k skips it)",
                          "not listed")


@static("plan-10.2-install-files", "10.2", "the files the plan's install steps apply exist")
def install_files(ctx):
    for name in INSTALL_STEP_FILES:
        if name not in ctx.manifests.files:
            yield Finding(str(ctx.manifests.root), "-", "-", f"file {name}", "missing")


SHARED_KINDS = ("Namespace", "StorageClass")


@static("plan-10.2-shared-apart", "10.2", "what other services share (the namespace, the StorageClass) is applied on "
        "its own, out of manifests/'s kustomization")
def shared_apart(ctx):
    """`kubectl delete -k manifests/` deletes every object the kustomization lists: listing the
    Namespace there would delete every other service of phonebill-dev with it."""
    listed = list((ctx.manifests.kustomization or {}).get("resources") or [])
    for obj in ctx.manifests.objects:
        if obj.kind in SHARED_KINDS and obj.file in listed:
            yield Finding(KUSTOMIZATION, "Kustomization", f"resources[{listed.index(obj.file)}]",
                          f"{obj.ref} in manifests/shared/, applied on its own (`kubectl delete -k manifests/` "
                          "must not delete what other services share)", f"{obj.file} listed", line=None)


@static("plan-2.1-namespace", "2.1", "every object lives in namespace phonebill-dev, which is created")
def namespaces(ctx):
    expected = figure("namespace").expected
    if ctx.manifests.find("Namespace", expected) is None:
        yield ctx.missing("Namespace", "namespace")
    for obj in ctx.manifests.objects:
        if obj.kind in ("Namespace", "StorageClass"):
            continue
        if obj.namespace != expected:
            yield ctx.finding(obj, ("metadata", "namespace"), expected, obj.namespace)


@static("plan-5.1-selector-labels", "5.1", "selectors match the pod labels they must select",
        checklist=("14.1-service-endpoint", "14.1-statefulset-ready"))
@wraps_missing
def selectors(ctx):
    sts = ctx.need("StatefulSet", "name")
    labels = _pod_labels(sts)
    selector = sts.get(("spec", "selector", "matchLabels")) or {}
    if not _matches(selector, labels):
        yield ctx.finding(sts, ("spec", "selector", "matchLabels"), f"labels of the pod template {labels}", selector)
    for svc in ctx.manifests.of_kind("Service"):
        sel = svc.get(("spec", "selector")) or {}
        if not _matches(sel, labels):
            yield ctx.finding(svc, ("spec", "selector"), f"a subset of the database pod's labels {labels}", sel)
    for pol in ctx.manifests.of_kind("NetworkPolicy"):
        sel = pol.get(("spec", "podSelector", "matchLabels")) or {}
        if not _matches(sel, labels):
            yield ctx.finding(pol, ("spec", "podSelector", "matchLabels"), f"a subset of {labels}", sel)
    for obj in _workloads(ctx):
        if obj.kind in ("StatefulSet", "Deployment"):
            continue
        # A Job whose pods carry the database's selector labels would join its Service.
        job_labels = _pod_labels(obj)
        for svc in ctx.manifests.of_kind("Service"):
            sel = svc.get(("spec", "selector")) or {}
            if _matches(sel, job_labels):
                yield ctx.finding(obj, workload.POD_SPEC[obj.kind][:-1] + ("metadata", "labels"),
                                  f"labels that {svc.ref}'s selector does not match", job_labels)


@static("plan-5.1-service-name", "5.1", "serviceName names a headless Service selecting the pods")
@wraps_missing
def service_name(ctx):
    sts = ctx.need("StatefulSet", "name")
    name = sts.get(("spec", "serviceName"))
    expected = figure("service-name").expected
    if name != expected:
        yield ctx.finding(sts, ("spec", "serviceName"), expected, name)
    svc = ctx.manifests.find("Service", name)
    if svc is None:
        yield ctx.finding(sts, ("spec", "serviceName"), "the name of a Service in manifests/", f"{name} (no such Service)")
    elif svc.get(("spec", "clusterIP")) != "None":
        yield ctx.finding(svc, ("spec", "clusterIP"), "None (headless)", svc.get(("spec", "clusterIP")))


@static("plan-5.2-service-ports", "5.2", "Service target ports are container ports of the selected pods",
        checklist=("14.1-service-endpoint",))
@wraps_missing
def service_ports(ctx):
    sts = ctx.need("StatefulSet", "name")
    ports = {}
    for c in sts.get(("spec", "template", "spec", "containers")) or []:
        for p in c.get("ports") or []:
            ports[p.get("containerPort")] = p
            if p.get("name"):
                ports[p["name"]] = p
    for svc in ctx.manifests.of_kind("Service"):
        for i, port in enumerate(svc.get(("spec", "ports")) or []):
            target = port.get("targetPort", port.get("port"))
            if target not in ports:
                yield ctx.finding(svc, ("spec", "ports", i, "targetPort"),
                                  f"a container port of {sts.ref} ({sorted(map(str, ports))})", target)


def _env_refs(ctx):
    for obj in _workloads(ctx):
        spec = workload.pod_spec(obj)
        for group in ("containers", "initContainers"):
            for ci, c in enumerate(spec.get(group) or []):
                for ei, env in enumerate(c.get("env") or []):
                    base = workload.POD_SPEC[obj.kind] + (group, ci, "env", ei, "valueFrom")
                    for ref_kind in ("secretKeyRef", "configMapKeyRef"):
                        ref = (env.get("valueFrom") or {}).get(ref_kind)
                        if ref:
                            yield obj, base + (ref_kind,), ref_kind, ref


def _secret_keys(secret) -> set[str]:
    return set(secret.get(("data",)) or {}) | set(secret.get(("stringData",)) or {})


@static("plan-5.4-secret-refs", "5.4", "every secretKeyRef and Secret volume names an existing Secret and key",
        checklist=("14.1-secret-configmap",))
def secret_refs(ctx):
    for obj, path, ref_kind, ref in _env_refs(ctx):
        if ref_kind != "secretKeyRef":
            continue
        secret = ctx.manifests.find("Secret", ref.get("name"))
        if secret is None:
            yield ctx.finding(obj, path + ("name",), "an existing Secret", ref.get("name"))
            continue
        keys = _secret_keys(secret)
        if ref.get("key") not in keys:
            yield ctx.finding(obj, path + ("key",), f"a key of {secret.ref} ({', '.join(sorted(keys))})", ref.get("key"))
    # A Secret volume with a missing Secret or key keeps the pod in ContainerCreating.
    yield from _volume_refs(ctx, "secret", "secretName", "Secret", _secret_keys)


def _volume_refs(ctx, source: str, name_field: str, kind: str, keys_of):
    """Volumes of a ConfigMap or a Secret: the object exists and has every item's key."""
    for obj in _workloads(ctx):
        for vi, vol in enumerate(workload.pod_spec(obj).get("volumes") or []):
            ref = vol.get(source)
            if not ref:
                continue
            base = workload.POD_SPEC[obj.kind] + ("volumes", vi, source)
            target = ctx.manifests.find(kind, ref.get(name_field))
            if target is None:
                yield ctx.finding(obj, base + (name_field,), f"an existing {kind}", ref.get(name_field))
                continue
            keys = keys_of(target)
            for ii, item in enumerate(ref.get("items") or []):
                if item.get("key") not in keys:
                    yield ctx.finding(obj, base + ("items", ii, "key"), f"a key of {target.ref} ({', '.join(sorted(keys))})",
                                      item.get("key"))


@static("plan-5.3-configmap-refs", "5.3", "every ConfigMap volume and key reference exists",
        checklist=("14.1-secret-configmap",))
def configmap_refs(ctx):
    for obj, path, ref_kind, ref in _env_refs(ctx):
        if ref_kind == "configMapKeyRef":
            cm = ctx.manifests.find("ConfigMap", ref.get("name"))
            if cm is None or ref.get("key") not in (cm.get(("data",)) or {}):
                yield ctx.finding(obj, path, "an existing ConfigMap key", f"{ref.get('name')}/{ref.get('key')}")
    yield from _volume_refs(ctx, "configMap", "name", "ConfigMap", lambda cm: set(cm.get(("data",)) or {}))


@static("plan-5.1-volume-refs", "5.1", "every volume mount and claim resolves",
        checklist=("14.1-statefulset-ready", "14.3-backup"))
def volume_refs(ctx):
    for obj in _workloads(ctx):
        spec = workload.pod_spec(obj)
        base = workload.POD_SPEC[obj.kind]
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        templates = {t.get("metadata", {}).get("name") for t in obj.get(("spec", "volumeClaimTemplates")) or []} \
            if obj.kind == "StatefulSet" else set()
        for ci, c in enumerate(spec.get("containers") or []):
            for mi, m in enumerate(c.get("volumeMounts") or []):
                if m.get("name") not in volumes and m.get("name") not in templates:
                    yield ctx.finding(obj, base + ("containers", ci, "volumeMounts", mi, "name"),
                                      f"a volume or claim template ({', '.join(sorted(set(volumes) | templates))})",
                                      m.get("name"))
        for vi, vol in volumes.items():
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and ctx.manifests.find("PersistentVolumeClaim", claim) is None:
                index = list(volumes).index(vi)
                yield ctx.finding(obj, base + ("volumes", index, "persistentVolumeClaim", "claimName"),
                                  "a PersistentVolumeClaim in manifests/", f"{claim} (no such claim)")
    classes = {o.name for o in ctx.manifests.of_kind("StorageClass")}
    for obj in ctx.manifests.objects:
        paths = []
        if obj.kind == "PersistentVolumeClaim":
            paths.append(("spec", "storageClassName"))
        if obj.kind == "StatefulSet":
            paths += [("spec", "volumeClaimTemplates", i, "spec", "storageClassName")
                      for i in range(len(obj.get(("spec", "volumeClaimTemplates")) or []))]
        for path in paths:
            if obj.get(path) not in classes:
                yield ctx.finding(obj, path, f"a StorageClass in manifests/ ({', '.join(sorted(classes)) or 'none'})",
                                  obj.get(path))
