"""The containers of the manifests as something a target can run: env resolved from the
Secret, the files of the Secret volumes they mount, scripts and probe commands as written,
mounts with their sources."""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.errors import InputError
from conformance.manifests import K8sObject, Manifests
from conformance.plan import figure

POD_SPEC = {
    "StatefulSet": ("spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


@dataclass(frozen=True)
class Mount:
    path: str
    volume: str
    source: dict  # the volume's definition (configMap / persistentVolumeClaim / emptyDir ...)
    read_only: bool = False


@dataclass(frozen=True)
class SecretFile:
    secret: str
    key: str
    value: str | None = field(repr=False)  # None: the Secret or its key is missing


@dataclass(frozen=True)
class Container:
    owner: K8sObject
    index: int
    spec: dict = field(repr=False)
    env: dict = field(repr=False)  # the environment it gets (secretKeyRef resolved): never print it
    # container path -> the Secret key behind it, for every file of the Secret volumes it mounts
    files: dict = field(default_factory=dict, repr=False)
    group: str = "containers"  # or "initContainers": run to completion, in order, before them

    def value(self, name: str) -> str | None:
        """A setting as the program sees it: NAME from the environment, or else the content of
        the Secret file that NAME_FILE names (the official image's and postgres_exporter's
        convention, which our scripts follow too)."""
        if name in self.env:
            return self.env[name]
        file = self.files.get(self.env.get(f"{name}_FILE", ""))
        return file.value if file is not None else None

    def secret_source(self, name: str) -> tuple[tuple, str | None, str | None] | None:
        """Where NAME comes from in the Secret: (manifest path of its env entry, Secret, key),
        through a secretKeyRef or a NAME_FILE into a Secret volume; None when from neither."""
        for i, item in enumerate(self.spec.get("env") or []):
            ref = (item.get("valueFrom") or {}).get("secretKeyRef") or {}
            if item.get("name") == name and ref:
                return self.path + ("env", i, "valueFrom", "secretKeyRef", "key"), ref.get("name"), ref.get("key")
            if item.get("name") == f"{name}_FILE" and item.get("value") in self.files:
                file = self.files[item["value"]]
                return self.path + ("env", i, "value"), file.secret, file.key
        return None

    @property
    def name(self) -> str:
        return self.spec.get("name", "")

    @property
    def image(self) -> str:
        return self.spec.get("image", "")

    @property
    def command(self) -> list[str]:
        return list(self.spec.get("command") or [])

    @property
    def args(self) -> list[str]:
        return list(self.spec.get("args") or [])

    @property
    def path(self) -> tuple:
        return POD_SPEC[self.owner.kind] + (self.group, self.index)

    def probe_command(self, probe: str) -> list[str]:
        return list(((self.spec.get(probe) or {}).get("exec") or {}).get("command") or [])

    def mounts(self) -> list[Mount]:
        volumes = {v.get("name"): v for v in (self.owner.get(POD_SPEC[self.owner.kind] + ("volumes",)) or [])}
        out = []
        for m in self.spec.get("volumeMounts") or []:
            out.append(Mount(m.get("mountPath", ""), m.get("name", ""), volumes.get(m.get("name"), {}),
                             bool(m.get("readOnly"))))
        return out

    def mount_of_configmap(self, configmap: str) -> Mount | None:
        for m in self.mounts():
            if (m.source.get("configMap") or {}).get("name") == configmap:
                return m
        return None


def claim_templates(obj: K8sObject) -> list[str]:
    """Names of a StatefulSet's volumeClaimTemplates (volumes its containers mount by name)."""
    return [t.get("metadata", {}).get("name") for t in obj.get(("spec", "volumeClaimTemplates")) or []]


def pod_spec(obj: K8sObject) -> dict:
    return obj.get(POD_SPEC[obj.kind]) or {}


def pod_spec_labels(obj: K8sObject) -> dict:
    """The labels of the pods a workload makes (its pod template's)."""
    return obj.get(POD_SPEC[obj.kind][:-1] + ("metadata", "labels")) or {}


def resolve_env(manifests: Manifests, obj: K8sObject, spec: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in spec.get("env") or []:
        name = item.get("name")
        if "value" in item:
            env[name] = str(item["value"])
            continue
        ref = (item.get("valueFrom") or {}).get("secretKeyRef") or {}
        if ref:
            # An unresolvable reference is left out: plan-5.4-secret-refs reports it.
            value = manifests.secret_value(ref.get("name"), ref.get("key"))
            if value is not None:
                env[name] = value
            continue
        ref = (item.get("valueFrom") or {}).get("configMapKeyRef") or {}
        if ref:
            cm = manifests.find("ConfigMap", ref.get("name"))
            value = (cm.get(("data",)) or {}).get(ref.get("key")) if cm else None
            if value is not None:
                env[name] = str(value)
    return env


def secret_items(volume: dict) -> list[tuple[str, str]]:
    """(key, relative path) of the files a Secret volume holds: its items, else every key."""
    source = volume.get("secret") or {}
    if source.get("items"):
        return [(i.get("key"), i.get("path")) for i in source["items"]]
    return []


def secret_files(manifests: Manifests, obj: K8sObject, spec: dict) -> dict[str, SecretFile]:
    """The files a container sees from the Secret volumes it mounts: container path -> SecretFile."""
    volumes = {v.get("name"): v for v in pod_spec(obj).get("volumes") or []}
    out: dict[str, SecretFile] = {}
    for m in spec.get("volumeMounts") or []:
        volume = volumes.get(m.get("name")) or {}
        name = (volume.get("secret") or {}).get("secretName")
        if name is None:
            continue
        items = secret_items(volume)
        if not items:  # no items: every key of the Secret, each a file named after it
            secret = manifests.find("Secret", name)
            keys = list((secret.get(("data",)) or {}) if secret else {}) + \
                list((secret.get(("stringData",)) or {}) if secret else {})
            items = [(k, k) for k in keys]
        base = str(m.get("mountPath", "")).rstrip("/")
        for key, rel in items:
            out[f"{base}/{rel}"] = SecretFile(name, key, manifests.secret_value(name, key))
    return out


def containers(manifests: Manifests, obj: K8sObject, group: str = "containers") -> list[Container]:
    specs = pod_spec(obj).get(group) or []
    return [Container(obj, i, s, resolve_env(manifests, obj, s), secret_files(manifests, obj, s), group)
            for i, s in enumerate(specs)]


def init_containers(manifests: Manifests, obj: K8sObject) -> list[Container]:
    """The pod's init containers, in the order the kubelet runs them: each to completion,
    before any container starts, in every new pod."""
    return containers(manifests, obj, "initContainers")


def _one(manifests: Manifests, kind: str, key: str, container: str | None = None) -> Container:
    name = figure(key).expected
    obj = manifests.find(kind, name)
    if obj is None:
        raise InputError(f"{manifests.root}: no {kind} named {name}")
    found = containers(manifests, obj)
    if container is not None:
        found = [c for c in found if c.name == container]
    if not found:
        raise InputError(f"{obj.file}: {obj.ref} has no container{' ' + container if container else ''}")
    return found[0]


def database(manifests: Manifests) -> Container:
    return _one(manifests, "StatefulSet", "name", figure("container").expected)


def image_tag(image: str) -> str:
    """registry:5000/postgres:18.6-bookworm@sha256:...: 18.6-bookworm; none given: latest."""
    last = image.rsplit("/", 1)[-1].split("@")[0]
    return last.split(":", 1)[1] if ":" in last else "latest"


def major_of_image(image: str) -> int | None:
    """The major a postgres image's tag names (postgres:18.6-bookworm: 18), None for latest."""
    import re

    match = re.match(r"(\d+)", image_tag(image))
    return int(match.group(1)) if match else None


def major_beyond_plan(major: int | None) -> int | None:
    """A major other than the plan's (what --pg-major N names), None for the plan's own."""
    return major if major is not None and major != figure("pg-major").plan else None


def image_major(manifests: Manifests) -> int | None:
    """The PostgreSQL major the database container's image names."""
    return major_of_image(database(manifests).image)


def metrics_sidecar(manifests: Manifests) -> Container | None:
    """The StatefulSet's metrics container (plan 8.1, ours), or None when it has none."""
    owner = database(manifests).owner
    return next((c for c in containers(manifests, owner) if c.name == figure("metrics-container").expected), None)


def postgresql_conf(manifests: Manifests) -> tuple[K8sObject | None, str | None]:
    """The config ConfigMap and its postgresql.conf text (None where either is missing)."""
    cm = manifests.find("ConfigMap", figure("config-configmap").expected)
    if cm is None:
        return None, None
    return cm, (cm.get(("data",)) or {}).get(figure("config-key").expected)


def schema_init(manifests: Manifests) -> Container:
    return _one(manifests, "Job", "schema-job")


def backup(manifests: Manifests) -> Container:
    return _one(manifests, "CronJob", "backup-cronjob")
