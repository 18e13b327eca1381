"""What the API server fills in for a field a manifest leaves out, read from the Kubernetes
schema of each version (kubernetes-validate's copy): the OpenAPI schemas state a default in the
field's description ("Defaults to Delete.", "The default value is 10."). A field written out at
its default is then no change to the server. Where the schema says nothing, Kubernetes' own
defaulting functions are cited (DEFAULTS_GO)."""

from __future__ import annotations

import functools
import re

# Defaults the schema's descriptions do not state: (kind, path) -> (value, source).
DEFAULTS_GO = {
    ("Secret", ("type",)): ("Opaque", "pkg/apis/core/v1/defaults.go SetDefaults_Secret"),
    ("PersistentVolumeClaim", ("spec", "volumeMode")): ("Filesystem", "pkg/apis/core/v1/defaults.go "
                                                                      "SetDefaults_PersistentVolumeClaimSpec"),
    ("StorageClass", ("volumeBindingMode",)): ("Immediate", "pkg/apis/storage/v1/defaults.go SetDefaults_StorageClass"),
}
_PATTERNS = (
    re.compile(r"[Dd]efaults? to [`\"']?([A-Za-z0-9_.-]+?)[`\"']?[.,;)\s]"),
    re.compile(r"[Tt]he default (?:value|policy) is [`\"']?([A-Za-z0-9_.-]+?)[`\"']?[.,;)\s]"),
    re.compile(r"[Dd]efault(?:s)? is [`\"']?([A-Za-z0-9_.-]+?)[`\"']?[.,;)\s]"),
    re.compile(r"Value of ([A-Za-z]+) is implied when not included"),
    re.compile(r"`([A-Za-z]+)` \(default\)"),
    re.compile(r"[Tt]he default value, \"([A-Za-z]+)\""),
)
_GROUPS = {"StatefulSet": "apps-v1", "Job": "batch-v1", "CronJob": "batch-v1", "StorageClass": "storage-v1",
           "Service": "v1", "Secret": "v1", "ConfigMap": "v1", "PersistentVolumeClaim": "v1"}


@functools.lru_cache(maxsize=None)
def _schema(kind: str, version: str):
    from conformance.static.k8s_schema import _schema_dir, kv

    folder = _schema_dir(version)
    main = kv().schema_contents(f"kubernetes-json-schema/{folder}/{kind.lower()}-{_GROUPS[kind]}.json", version)
    definitions = kv().schema_contents(f"kubernetes-json-schema/{folder}/_definitions.json", version)
    return main, definitions.get("definitions") or definitions.get("$defs") or {}


def _resolve(node: dict, definitions: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = definitions.get(node["$ref"].rsplit("/", 1)[-1], {})
    return node


def _field(kind: str, path: tuple, version: str) -> dict | None:
    node, definitions = _schema(kind, version)
    for part in path:
        node = _resolve(node, definitions)
        if isinstance(part, int):
            node = node.get("items") or {}
            continue
        props = node.get("properties") or {}
        if part not in props:
            return None
        node = props[part]
    return _resolve(node, definitions) if "$ref" in node else node


def default(kind: str, path: tuple, version: str):
    """(value, source) the API server gives path when it is left out, or None."""
    if (kind, path) in DEFAULTS_GO:
        return DEFAULTS_GO[(kind, path)]
    if kind not in _GROUPS:
        return None
    try:
        field = _field(kind, path, version)
    except Exception:  # a version or kind kubernetes-validate lacks: no default known
        return None
    if not field:
        return None
    text = (field.get("description") or "") + " "
    for pattern in _PATTERNS:
        found = pattern.search(text)
        if found:
            raw = found.group(1).rstrip(".")
            types = field.get("type") or []
            types = types if isinstance(types, list) else [types]
            try:
                if "integer" in types:
                    return int(raw), f"the {version} schema: {found.group(0).strip()}"
                if "boolean" in types:
                    return raw.lower() == "true", f"the {version} schema: {found.group(0).strip()}"
            except ValueError:
                return None
            return raw, f"the {version} schema: {found.group(0).strip()}"
    return None


def same_after_defaults(kind: str, path: tuple, base_value, now_value, versions: list[str]) -> bool:
    """A field present on one side only, at the value the server defaults it to there."""
    if (base_value is None) == (now_value is None):
        return False
    present = now_value if base_value is None else base_value
    for version in versions:
        known = default(kind, tuple(p for p in path), version)
        if known is None or known[0] != present:
            return False
    return True
