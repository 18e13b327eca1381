"""ConfigMap volumes as local folders: what a pod would see at the mount, written as files."""

from __future__ import annotations

import shutil
from pathlib import Path

from conformance import workload
from conformance.manifests import Manifests
from conformance.plan import figure


def materialize(manifests: Manifests, mount: workload.Mount, target: Path) -> Path:
    """Write a ConfigMap volume's files (its `items`, or every key) into target."""
    ref = mount.source.get("configMap") or {}
    cm = manifests.find("ConfigMap", ref.get("name"))
    data = (cm.get(("data",)) or {}) if cm else {}
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o755)
    items = ref.get("items") or [{"key": k, "path": k} for k in data]
    for item in items:
        path = target / item["path"]
        path.write_text(data.get(item["key"], ""), encoding="utf-8")
        path.chmod(0o644)
    return target


def write_schema_sql(manifests: Manifests, target: Path) -> Path:
    """The schema ConfigMap as the init Job mounts it, replacing what target held."""
    mount = workload.schema_init(manifests).mount_of_configmap(figure("schema-configmap").expected)
    shutil.rmtree(target, ignore_errors=True)
    if mount is not None:
        materialize(manifests, mount, target)
    else:
        target.mkdir(parents=True)
    return target
