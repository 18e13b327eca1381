"""The StatefulSet's pod template carries a checksum of the config ConfigMap's content, so that a
changed postgresql.conf changes the template and the pod restarts to read it. Nothing rolls a
pod when a ConfigMap it mounts changes, and settings of context `postmaster` are read only at
start; without this, such an edit applies cleanly and does nothing.

Not kustomize's configMapGenerator: its hash suffix would rename the plan's ConfigMap.
`python -m conformance config-checksum` rewrites the annotation; the gate's
plan-5.3-config-checksum holds it equal to the ConfigMap."""

from __future__ import annotations

import hashlib
import json
import re

from conformance import workload
from conformance.errors import InputError
from conformance.manifests import K8sObject, Manifests

ANNOTATION = "checksum/config"
TEMPLATE_ANNOTATIONS = ("spec", "template", "metadata", "annotations")


def checksum(config_map: K8sObject) -> str:
    """sha256 of the ConfigMap's data, key order and YAML layout aside."""
    data = config_map.get(("data",)) or {}
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def current(manifests: Manifests) -> tuple[K8sObject, str | None, str]:
    """(the StatefulSet, the checksum its template carries, the ConfigMap's checksum)."""
    cm, _ = workload.postgresql_conf(manifests)
    if cm is None:
        raise InputError(f"{manifests.root}: no config ConfigMap")
    sts = workload.database(manifests).owner
    carried = (sts.get(TEMPLATE_ANNOTATIONS) or {}).get(ANNOTATION)
    return sts, carried, checksum(cm)


def write(manifests: Manifests) -> bool:
    """Rewrite the annotation's line in the StatefulSet's file; True when it changed."""
    sts, carried, wanted = current(manifests)
    if carried == wanted:
        return False
    path = manifests.home / sts.file
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf'^(\s+){re.escape(ANNOTATION)}:.*$', re.M)
    if not pattern.search(text):
        raise InputError(f"{sts.file}: {sts.ref} has no `{ANNOTATION}:` line under spec.template.metadata.annotations "
                         "to update; add one (any value) and run this again")
    path.write_text(pattern.sub(lambda m: f'{m.group(1)}{ANNOTATION}: "{wanted}"', text, count=1), encoding="utf-8")
    return True
