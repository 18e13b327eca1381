"""Load manifests/ into Kubernetes objects that remember the file and line of every field.

Anything that makes the directory unusable raises InputError with one line naming the file
(and the line, where the parser knows it): the CLI turns it into exit code 2.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from conformance.errors import InputError

KUSTOMIZATION = "kustomization.yaml"

# (apiVersion, kind) of the objects this project ships. Anything else is a typo or a new kind
# the gate does not know yet: both must be looked at before the gate can say "valid".
KNOWN_KINDS = {
    ("v1", "Namespace"), ("v1", "Secret"), ("v1", "ConfigMap"), ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"), ("v1", "ServiceAccount"),
    ("storage.k8s.io/v1", "StorageClass"), ("apps/v1", "StatefulSet"), ("apps/v1", "Deployment"),
    ("batch/v1", "Job"), ("batch/v1", "CronJob"), ("networking.k8s.io/v1", "NetworkPolicy"),
    ("monitoring.coreos.com/v1", "PrometheusRule"), ("policy/v1", "PodDisruptionBudget"),
}

Path_ = tuple  # a field path: ("spec", "template", "spec", "containers", 0, "image")

_MISSING = object()


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class K8sObject:
    file: str
    data: dict
    lines: dict = field(repr=False)

    @property
    def kind(self) -> str:
        return self.data.get("kind", "")

    @property
    def name(self) -> str:
        return (self.data.get("metadata") or {}).get("name", "")

    @property
    def namespace(self) -> str | None:
        return (self.data.get("metadata") or {}).get("namespace")

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def get(self, path: Path_, default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node

    def line(self, path: Path_) -> int | None:
        """The line of path, or of its nearest ancestor that exists."""
        for end in range(len(path), -1, -1):
            if tuple(path[:end]) in self.lines:
                return self.lines[tuple(path[:end])]
        return None


@dataclass
class Manifests:
    root: Path
    objects: list[K8sObject]
    files: list[str]
    kustomization: dict | None
    # An overlay (upgrade/pgNN/): the base directory its objects come from, whose
    # sql/ and docs/ beside it are the project's.
    origin: Path | None = None

    @property
    def home(self) -> Path:
        """The directory of the files the objects were read from (the base for an overlay)."""
        return self.origin or self.root

    def find(self, kind: str, name: str | None = None) -> K8sObject | None:
        for obj in self.objects:
            if obj.kind == kind and (name is None or obj.name == name):
                return obj
        return None

    def of_kind(self, kind: str) -> list[K8sObject]:
        return [o for o in self.objects if o.kind == kind]

    def secret_value(self, name: str, key: str) -> str | None:
        secret = self.find("Secret", name)
        if secret is None:
            return None
        if key in (secret.get(("stringData",)) or {}):
            return str(secret.get(("stringData", key)))
        raw = (secret.get(("data",)) or {}).get(key)
        return None if raw is None else base64.b64decode(raw).decode()


# -- YAML with line numbers -------------------------------------------------------------------

_constructor = yaml.constructor.SafeConstructor()
# libyaml's parser where PyYAML has it (several times faster; the same nodes and marks).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _build(node: yaml.Node, path: Path_, lines: dict, fname: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = _constructor.construct_object(key_node)
            if key in out:
                raise InputError(f"{fname}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, path + (key,), lines, fname)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines, fname) for i, item in enumerate(node.value)]
    return _constructor.construct_object(node)


def _documents(path: Path, display: str) -> Iterator[tuple[dict, dict, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{display}: not UTF-8 text") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display}:{mark.line + 1}" if mark else display
        raise InputError(f"{where}: YAML does not parse: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{display}: YAML does not parse: {exc}") from None
    for node in nodes:
        if node is None:
            continue
        lines: dict = {}
        data = _build(node, (), lines, display)
        yield data, lines, node.start_mark.line + 1


def _validate_object(obj: K8sObject, line: int) -> None:
    where = f"{obj.file}:{line}"
    if not isinstance(obj.data, dict):
        raise InputError(f"{where}: document is not a Kubernetes object (not a mapping)")
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.data.get(key), str) or not obj.data.get(key):
            raise InputError(f"{where}: document is not a Kubernetes object (no {key})")
    if not obj.name:
        raise InputError(f"{where}: {obj.kind} has no metadata.name")
    if (obj.data["apiVersion"], obj.kind) not in KNOWN_KINDS:
        raise InputError(f"{where}: unknown kind {obj.data['apiVersion']}/{obj.kind} ({obj.name})")
    if obj.kind == "Secret":
        for key, value in (obj.data.get("data") or {}).items():
            try:
                base64.b64decode(str(value), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise InputError(
                    f"{obj.file}:{obj.line(('data', key))}: Secret {obj.name} data.{key} is not base64 text"
                ) from None


# Folders of manifests/ applied on their own: shared/ (the namespace and StorageClass other
# services share, out of the default kustomization so that deleting ours cannot remove them)
# and monitoring/ (needs the Prometheus Operator's CRD).
COMPONENTS = ("shared", "monitoring")
# What the built-in overlay renderer applies (the gate needs no kubectl): a base directory,
# the images transformer and JSON 6902 patches, as upgrade/pgNN/ use them.
OVERLAY_FIELDS = {"apiVersion", "kind", "resources", "images", "patches"}


def _overlay(root: Path, kustomization: dict) -> Manifests:
    import copy
    import os

    import jsonpatch

    from conformance.workload import POD_SPEC  # workload imports this module

    where = f"{root / KUSTOMIZATION}"
    unknown = sorted(set(kustomization) - OVERLAY_FIELDS)
    if unknown:
        raise InputError(f"{where}: {', '.join(unknown)} is not rendered by the gate's overlay support "
                         f"(it takes {', '.join(sorted(OVERLAY_FIELDS))})")
    resources = kustomization.get("resources") or []
    if len(resources) != 1:
        raise InputError(f"{where}: an overlay takes exactly one base directory in resources")
    base = load((root / resources[0]).resolve())
    prefix = os.path.relpath(base.root, root)
    objects = [K8sObject(f"{prefix}/{o.file}", copy.deepcopy(o.data), o.lines) for o in base.objects]
    for image in kustomization.get("images") or []:
        for obj in objects:
            pod = obj.get(POD_SPEC[obj.kind]) if obj.kind in POD_SPEC else None
            for containers in ((pod or {}).get("containers") or [], (pod or {}).get("initContainers") or []):
                for c in containers:
                    repo, _, tag = str(c.get("image", "")).partition(":")
                    if repo == image.get("name"):
                        c["image"] = f"{image.get('newName', repo)}:{image.get('newTag', tag)}"
    for i, patch in enumerate(kustomization.get("patches") or []):
        target = patch.get("target") or {}
        matched = [o for o in objects if o.kind == target.get("kind") and o.name == target.get("name")]
        if not matched:
            raise InputError(f"{where}: patches[{i}] targets {target.get('kind')}/{target.get('name')}, which the base lacks")
        for obj in matched:
            try:
                obj.data = jsonpatch.apply_patch(obj.data, yaml.safe_load(patch.get("patch") or "[]"))
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise InputError(f"{where}: patches[{i}] does not apply to {obj.ref}: {exc}") from None
    # The base's kustomization lists the resources: the overlay only changes them.
    return Manifests(root=root, objects=objects, files=base.files, kustomization=base.kustomization, origin=base.root)


def load(root: Path | str) -> Manifests:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such directory")
    kustomization = None
    kpath = root / KUSTOMIZATION
    if kpath.exists():
        docs = list(_documents(kpath, kpath.name))
        kustomization = docs[0][0] if docs else {}
        names = list(kustomization.get("resources") or [])
        if any((root / name).is_dir() for name in names):
            return _overlay(root, kustomization)
        for name in names:
            if not (root / name).is_file():
                raise InputError(f"{KUSTOMIZATION}: resource {name} is missing from {root}")
    else:
        names = sorted(p.name for p in root.iterdir() if p.suffix in (".yaml", ".yml"))
    if not names:
        raise InputError(f"{root}: no manifests (no *.yaml files and no {KUSTOMIZATION} resources)")

    # Components applied on their own (kubectl apply -k manifests/shared/, manifests/monitoring/):
    # the gate checks them too, under their relative file names.
    for component in COMPONENTS:
        cpath = root / component / KUSTOMIZATION
        if cpath.exists():
            docs = list(_documents(cpath, f"{component}/{KUSTOMIZATION}"))
            for name in (docs[0][0] if docs else {}).get("resources") or []:
                if not (root / component / name).is_file():
                    raise InputError(f"{component}/{KUSTOMIZATION}: resource {name} is missing from {root / component}")
                names.append(f"{component}/{name}")

    objects: list[K8sObject] = []
    seen: dict[tuple, str] = {}
    for name in names:
        for data, lines, line in _documents(root / name, name):
            obj = K8sObject(file=name, data=data, lines=lines)
            _validate_object(obj, line)
            ident = (obj.data["apiVersion"].split("/")[0], obj.kind, obj.namespace, obj.name)
            if ident in seen:
                raise InputError(f"{name}:{line}: duplicate object {obj.ref} (also in {seen[ident]})")
            seen[ident] = f"{name}:{line}"
            objects.append(obj)
    if not objects:
        raise InputError(f"{root}: the manifests hold no Kubernetes objects")
    all_files = sorted(p.name for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.name != KUSTOMIZATION)
    return Manifests(root=root, objects=objects, files=all_files, kustomization=kustomization)
