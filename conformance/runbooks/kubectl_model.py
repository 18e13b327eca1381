"""What a kubectl command line does, read the way kubectl 1.30-1.35 reads it (from its source:
pkg/cmd/run/run.go and pkg/generate/versioned/run.go for `run`, pkg/cmd/util/override_options.go
for --overrides, pkg/cmd/create/create_job.go for `create job --from`), without a cluster:
kubectl's own --dry-run=client still asks a server for API discovery. Used by the runbook
checks (lint.py) to see the objects a runbook makes and the names it uses."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from conformance.runbooks.shellparse import DYNAMIC

# Flags that take a value (as the next word, or after "=").
VALUE_FLAGS = {
    "-n", "--namespace", "-c", "--container", "-o", "--output", "-l", "--selector", "-f", "--filename",
    "-k", "--kustomize", "--image", "--overrides", "--override-type", "--restart", "--timeout", "--for",
    "-p", "--patch", "--type", "--replicas", "--from", "--from-literal", "--from-file", "--tail", "--labels",
    "--env", "--port", "--cascade", "--grace-period", "--context", "--kubeconfig", "--field-selector",
    "--pod-running-timeout", "--image-pull-policy", "--annotations", "--since", "--current-replicas",
}
KINDS = {
    "pod": "Pod", "pods": "Pod", "po": "Pod", "job": "Job", "jobs": "Job", "cronjob": "CronJob",
    "cronjobs": "CronJob", "cj": "CronJob", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
    "sts": "StatefulSet", "pvc": "PersistentVolumeClaim", "pvcs": "PersistentVolumeClaim",
    "persistentvolumeclaim": "PersistentVolumeClaim", "persistentvolumeclaims": "PersistentVolumeClaim",
    "pv": "PersistentVolume", "pvs": "PersistentVolume", "persistentvolume": "PersistentVolume",
    "persistentvolumes": "PersistentVolume", "configmap": "ConfigMap", "configmaps": "ConfigMap",
    "cm": "ConfigMap", "secret": "Secret", "secrets": "Secret", "service": "Service", "services": "Service",
    "svc": "Service", "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "namespace": "Namespace", "namespaces": "Namespace", "ns": "Namespace", "storageclass": "StorageClass",
    "storageclasses": "StorageClass", "sc": "StorageClass", "networkpolicy": "NetworkPolicy",
    "networkpolicies": "NetworkPolicy", "netpol": "NetworkPolicy",
}
CLUSTER_SCOPED = {"PersistentVolume", "Namespace", "StorageClass"}
# Verbs whose positional words name objects (KIND NAME... or KIND/NAME...).
NAMING_VERBS = {"get", "delete", "describe", "patch", "scale", "wait", "label", "annotate", "edit", "logs",
                "rollout", "port-forward", "exec", "cp"}


@dataclass
class Call:
    """One kubectl command line, understood."""
    verb: str  # "get", "create job", "rollout status", ...
    namespace: str | None
    flags: dict[str, list[str]]
    positionals: list[str]
    after: list[str]  # the words after --
    refs: list[tuple[str, str]] = field(default_factory=list)  # (Kind, name) it names

    def flag(self, *names: str) -> str | None:
        for name in names:
            if name in self.flags:
                return self.flags[name][-1]
        return None

    def has(self, *names: str) -> bool:
        return any(n in self.flags for n in names)


def parse(words: list[str]) -> Call | None:
    """A kubectl argv (words[0] == "kubectl"), or None for another program."""
    if not words or words[0] != "kubectl":
        return None
    flags: dict[str, list[str]] = {}
    positionals: list[str] = []
    after: list[str] = []
    i = 1
    while i < len(words):
        w = words[i]
        if w == "--":
            after = words[i + 1:]
            break
        if w.startswith("-") and w != "-":
            name, eq, value = w.partition("=")
            if eq:
                flags.setdefault(name, []).append(value)
            elif name in VALUE_FLAGS and i + 1 < len(words):
                flags.setdefault(name, []).append(words[i + 1])
                i += 1
            elif name.startswith("-") and not name.startswith("--") and len(name) > 2:
                for letter in name[1:]:  # -it
                    flags.setdefault(f"-{letter}", []).append("")
            else:
                flags.setdefault(name, []).append("")
        else:
            positionals.append(w)
        i += 1
    if not positionals:
        return Call("", None, flags, [], after)
    verb, rest = positionals[0], positionals[1:]
    if verb in ("create", "rollout", "set", "config") and rest:
        verb, rest = f"{verb} {rest[0]}", rest[1:]
    namespace = (flags.get("-n") or flags.get("--namespace") or [None])[-1]
    call = Call(verb, namespace, flags, rest, after)
    call.refs = _refs(call)
    return call


def _refs(call: Call) -> list[tuple[str, str]]:
    base = call.verb.split()[0]
    if base not in NAMING_VERBS:
        if call.verb == "create job":
            source = call.flag("--from") or ""
            kind, _, name = source.partition("/")
            return [(KINDS.get(kind.lower(), kind), name)] if name else []
        return []
    words = call.positionals
    if base in ("logs", "exec", "port-forward", "cp"):
        if not words:
            return []
        kind, _, name = words[0].rpartition("/")
        return [(KINDS.get(kind.lower(), kind) if kind else "Pod", name)]
    refs = []
    if words and "/" not in words[0] and "," not in words[0]:
        kind = KINDS.get(words[0].lower())
        if kind is not None:
            return [(kind, w) for w in words[1:] if not w.startswith("-")]
    for w in words:
        kind, slash, name = w.partition("/")
        if slash:
            refs.append((KINDS.get(kind.lower(), kind), name))
    return refs


# -- kubectl run --------------------------------------------------------------------------
def run_pod(call: Call) -> dict:
    """The Pod `kubectl run` posts: the run-pod/v1 generator's object (BasicPod.Generate), then
    --overrides applied to it last (createGeneratedObject), by --override-type (default merge:
    an RFC 7396 JSON merge patch, in which a list such as spec.containers replaces the
    generated one whole)."""
    name = call.positionals[0] if call.positionals else ""
    stdin = call.has("-i", "--stdin")
    labels = {}
    for item in (call.flag("-l", "--labels") or "").split(","):
        if "=" in item:
            k, _, v = item.partition("=")
            labels[k] = v
    container: dict = {"name": name, "image": call.flag("--image") or ""}
    if stdin:
        container["stdin"] = True
        container["stdinOnce"] = not call.has("--leave-stdin-open")
    if call.has("-t", "--tty"):
        container["tty"] = True
    if call.after:
        container["command" if call.has("--command") else "args"] = list(call.after)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"run": name}},
           "spec": {"containers": [container], "dnsPolicy": "ClusterFirst",
                    # the flag's default is Always; the generator passes it through
                    "restartPolicy": call.flag("--restart") or "Always"}}
    overrides = call.flag("--overrides")
    if not overrides:
        return pod
    patch = json.loads(overrides)
    kind = call.flag("--override-type") or "merge"
    if kind == "merge":
        import json_merge_patch

        return json_merge_patch.merge(copy.deepcopy(pod), patch)
    if kind == "json":
        import jsonpatch

        return jsonpatch.apply_patch(pod, patch)
    if kind == "strategic":
        return strategic_merge(pod, patch)
    raise ValueError(f"--override-type {kind}: not one of merge, json, strategic")


# Lists a strategic merge patch merges item by item, by this key (the API's patchMergeKey).
_MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "volumeMounts": "mountPath",
               "env": "name", "ports": "containerPort"}


def strategic_merge(original, patch, key: str | None = None):
    """A strategic merge patch on a Pod, for the lists a Pod has (merged by their keys)."""
    if isinstance(patch, dict) and isinstance(original, dict):
        out = copy.deepcopy(original)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in _MERGE_KEYS and isinstance(v, list) and isinstance(out.get(k), list):
                merged = {item.get(_MERGE_KEYS[k]): item for item in out[k] if isinstance(item, dict)}
                for item in v:
                    ident = item.get(_MERGE_KEYS[k])
                    merged[ident] = strategic_merge(merged.get(ident, {}), item)
                out[k] = list(merged.values())
            else:
                out[k] = strategic_merge(out.get(k), v)
        return out
    return copy.deepcopy(patch)


def attaches(call: Call) -> bool:
    """Whether kubectl run attaches to the pod's first container (-i, -t or --attach)."""
    return call.has("-i", "--stdin", "-t", "--tty") or call.flag("--attach") not in (None, "false")


def is_dynamic(word: str | None) -> bool:
    return word is None or DYNAMIC in word
