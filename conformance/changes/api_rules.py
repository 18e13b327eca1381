"""What the API server does with an update, kind by kind, as Kubernetes' own update validation
has it in the versions the gate targets (--k8s-versions). Each rule names the function it
mirrors (kubernetes/kubernetes, pkg/apis/*/validation/validation.go and the registry
strategies); where a rule changed between releases, it depends on the version. Read from
Kubernetes' source and release notes (1.30-1.36); what those did not settle is marked so.

A change is one of:
  refused      the API server refuses it: `kubectl apply -k` stops at that object;
  conditional  refused only in a state the manifests cannot show (a finished Job that still
               exists, a claim not yet bound): said, as a warning;
  ignored      accepted and silently dropped (a feature gate off): said, as a warning;
and a field written out at the value the server defaults it to is no change at all
(changes/defaults.py), nor is a Service's allocated clusterIP left out (the registry keeps it)."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.changes import defaults
from conformance.changes.diff import Pair, under, value

REFUSED, CONDITIONAL, IGNORED = "refused", "conditional", "ignored"


@dataclass(frozen=True)
class Verdict:
    outcome: str
    path: tuple
    why: str
    source: str
    versions: tuple[str, ...] = ()  # the targeted versions it holds for (empty: all)


def minor(version: str) -> int:
    return int(version.split(".")[1])


def _span(versions: list[str]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"


def real_changes(pair: Pair, diffs: list[tuple], versions: list[str]) -> list[tuple]:
    """The diffs that change something for the API server: not a field written out at its
    default on one side and left out on the other."""
    kind = pair.any.kind
    return [d for d in diffs if not defaults.same_after_defaults(kind, d, value(pair.base, d), value(pair.now, d),
                                                                 versions)]


# -- StatefulSet -------------------------------------------------------------------------------------
STATEFULSET_SOURCE = "ValidateStatefulSetUpdate (pkg/apis/apps/validation/validation.go)"
_STS_MUTABLE = (("spec", "replicas"), ("spec", "ordinals"), ("spec", "template"), ("spec", "updateStrategy"),
                ("spec", "persistentVolumeClaimRetentionPolicy"), ("spec", "minReadySeconds"))


def _statefulset_mutable(version: str) -> tuple:
    # revisionHistoryLimit joined the list after 1.35 (the 1.36 error text lists it; 1.31-1.35
    # servers refuse it, kubernetes/kubernetes#130263).
    return _STS_MUTABLE + ((("spec", "revisionHistoryLimit"),) if minor(version) >= 36 else ())


def statefulset(pair: Pair, diffs: list[tuple], versions: list[str]) -> list[Verdict]:
    out = []
    for d in diffs:
        if d[:1] != ("spec",):
            continue
        refusing = [v for v in versions if not any(under(d, m) for m in _statefulset_mutable(v))]
        if refusing:
            out.append(Verdict(REFUSED, d, "updates to a StatefulSet's spec outside replicas, ordinals, template, "
                               "updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds are forbidden",
                               STATEFULSET_SOURCE, tuple(refusing) if refusing != versions else ()))
    return out


# -- Job -----------------------------------------------------------------------------------------------
JOB_SOURCE = "ValidateJobSpecUpdate / ValidateJobTemplateSpecUpdate (pkg/apis/batch/validation/validation.go)"
_JOB_IMMUTABLE = (("spec", "template"), ("spec", "selector"), ("spec", "completionMode"), ("spec", "completions"),
                  ("spec", "podFailurePolicy"), ("spec", "backoffLimitPerIndex"), ("spec", "managedBy"),
                  ("spec", "successPolicy"))


def job(pair: Pair, diffs: list[tuple], versions: list[str]) -> list[Verdict]:
    ttl = value(pair.base, ("spec", "ttlSecondsAfterFinished"))
    out = []
    for d in diffs:
        if any(under(d, i) for i in _JOB_IMMUTABLE):
            if isinstance(ttl, int):
                out.append(Verdict(CONDITIONAL, d, f"field is immutable while the Job exists: the finished Job is "
                                   f"deleted {ttl} s after it finishes (ttlSecondsAfterFinished), after which the "
                                   "apply creates it anew; before that it is refused", JOB_SOURCE))
            else:
                out.append(Verdict(REFUSED, d, "field is immutable (a Job's template, selector, completions and "
                                   "policies; the Job never expires: no ttlSecondsAfterFinished)", JOB_SOURCE))
    return out


# -- PersistentVolumeClaim -------------------------------------------------------------------------------
PVC_SOURCE = "ValidatePersistentVolumeClaimUpdate (pkg/apis/core/validation/validation.go)"
_STORAGE = ("spec", "resources", "requests", "storage")
_VAC = ("spec", "volumeAttributesClassName")


def pvc(pair: Pair, diffs: list[tuple], versions: list[str], binds_late: bool) -> list[Verdict]:
    """binds_late: the claim's StorageClass waits for the first consumer (it may still be Pending)."""
    out = []
    for d in diffs:
        if d[:1] != ("spec",):
            continue
        if under(d, _STORAGE) or d == _STORAGE[:-1] or d == _STORAGE[:-2]:
            before, after = value(pair.base, _STORAGE), value(pair.now, _STORAGE)
            if smaller(after, before):
                out.append(Verdict(REFUSED, _STORAGE, "field can not be less than previous value", PVC_SOURCE))
            elif before != after and binds_late:
                out.append(Verdict(CONDITIONAL, _STORAGE, "a claim grows only while it is Bound: its StorageClass "
                                   "binds on the first consumer (WaitForFirstConsumer), and until a pod has mounted "
                                   "it (the first backup Job) the change is refused", PVC_SOURCE))
            continue
        if under(d, _VAC):
            out += _volume_attributes_class(pair, versions)
            continue
        if d == ("spec", "storageClassName") and value(pair.base, d) is None:
            continue  # nil -> a class: allowed (the default class filled in later)
        out.append(Verdict(REFUSED, d, "spec is immutable after creation except resources.requests and "
                           "volumeAttributesClassName for bound claims", PVC_SOURCE))
    return out


def _volume_attributes_class(pair: Pair, versions: list[str]) -> list[Verdict]:
    before, after = value(pair.base, _VAC), value(pair.now, _VAC)
    # The VolumeAttributesClass feature gate: off by default before 1.34, GA (on) from 1.34;
    # clearing to unset is allowed from 1.34 (1.34 release notes); to "" stays forbidden.
    gate_off = [v for v in versions if minor(v) < 34]
    gate_on = [v for v in versions if minor(v) >= 34]
    out = []
    if before is None and after is not None and gate_off:
        out.append(Verdict(IGNORED, _VAC, "dropped without a word while the VolumeAttributesClass feature gate is "
                           "off (DropDisabledFields)", PVC_SOURCE, tuple(gate_off) if gate_on else ()))
    if before is not None and gate_off:
        out.append(Verdict(REFUSED, _VAC, "update is forbidden when the VolumeAttributesClass feature gate is disabled",
                           PVC_SOURCE, tuple(gate_off) if gate_on else ()))
    if before is not None and after == "" and gate_on:
        out.append(Verdict(REFUSED, _VAC, "update from non-nil value to an empty string is forbidden", PVC_SOURCE,
                           tuple(gate_on) if gate_off else ()))
    return out


def smaller(now, base) -> bool:
    """now is a smaller quantity than base (both given and readable)."""
    from conformance.quantity import parse_quantity

    try:
        return now is not None and base is not None and parse_quantity(str(now)) < parse_quantity(str(base))
    except ValueError:
        return False


# -- Service -------------------------------------------------------------------------------------------
SERVICE_SOURCE = "ValidateServiceUpdate (pkg/apis/core/validation/validation.go)"
_ALLOCATED = ("clusterIP", "clusterIPs", "healthCheckNodePort")


def service(pair: Pair, diffs: list[tuple], versions: list[str]) -> list[Verdict]:
    out = []
    for d in diffs:
        if d[:2] in (("spec", "clusterIP"), ("spec", "clusterIPs")):
            if value(pair.now, d[:2]) is None:
                continue  # left out: the registry restores what was allocated (patchAllocatedValues)
            out.append(Verdict(REFUSED, d[:2], "may not change once set (a Service's cluster IP, headless or not)",
                               SERVICE_SOURCE))
        elif d[:3] == ("spec", "ipFamilies", 0) or (d == ("spec", "ipFamilies") and value(pair.now, d)
                                                     and value(pair.base, d)
                                                     and value(pair.now, d)[0] != value(pair.base, d)[0]):
            out.append(Verdict(REFUSED, ("spec", "ipFamilies", 0), "the primary IP family may not change",
                               SERVICE_SOURCE))
        elif d == ("spec", "loadBalancerClass") and value(pair.base, ("spec", "type")) == "LoadBalancer" \
                and value(pair.now, ("spec", "type")) == "LoadBalancer":
            out.append(Verdict(REFUSED, d, "may not change while the Service stays of type LoadBalancer",
                               SERVICE_SOURCE))
        elif d == ("spec", "healthCheckNodePort") and value(pair.now, d) is not None and all(
                value(o, ("spec", "type")) == "LoadBalancer" and value(o, ("spec", "externalTrafficPolicy")) == "Local"
                for o in (pair.base, pair.now)):
            out.append(Verdict(REFUSED, d, "may not change while the Service is a LoadBalancer with "
                               "externalTrafficPolicy Local", SERVICE_SOURCE))
    return out


# -- Secret, ConfigMap -------------------------------------------------------------------------------------
def stored(pair: Pair, diffs: list[tuple], versions: list[str]) -> list[Verdict]:
    kind = pair.any.kind
    source = f"Validate{kind}Update (pkg/apis/core/validation/validation.go)"
    out = []
    if value(pair.base, ("immutable",)) is True:
        if value(pair.now, ("immutable",)) is not True:
            out.append(Verdict(REFUSED, ("immutable",), "field is immutable when `immutable` is set", source))
        data = [d for d in diffs if d[:1] in (("data",), ("stringData",), ("binaryData",))]
        if data:
            out.append(Verdict(REFUSED, data[0], "field is immutable when `immutable` is set", source))
    if kind == "Secret" and ("type",) in diffs:
        out.append(Verdict(REFUSED, ("type",), "field is immutable (a Secret's type)", source))
    return out


# -- StorageClass ------------------------------------------------------------------------------------------
STORAGECLASS_SOURCE = "ValidateStorageClassUpdate (pkg/apis/storage/validation/validation.go)"


def storage_class(pair: Pair, diffs: list[tuple], versions: list[str]) -> list[Verdict]:
    out = []
    for field in ("provisioner", "parameters", "reclaimPolicy", "volumeBindingMode"):
        hit = [d for d in diffs if under(d, (field,))]
        if hit:
            out.append(Verdict(REFUSED, hit[0], f"updates to {field} are forbidden", STORAGECLASS_SOURCE))
    return out


def verdicts(pair: Pair, diffs: list[tuple], versions: list[str], binds_late: bool = False) -> list[Verdict]:
    diffs = real_changes(pair, diffs, versions)
    kind = pair.any.kind
    if kind == "StatefulSet":
        return statefulset(pair, diffs, versions)
    if kind == "Job":
        return job(pair, diffs, versions)
    if kind == "PersistentVolumeClaim":
        return pvc(pair, diffs, versions, binds_late)
    if kind == "Service":
        return service(pair, diffs, versions)
    if kind in ("Secret", "ConfigMap"):
        return stored(pair, diffs, versions)
    if kind == "StorageClass":
        return storage_class(pair, diffs, versions)
    return []


def versions_note(v: Verdict, versions: list[str]) -> str:
    if not v.versions or list(v.versions) == versions:
        return ""
    rest = [x for x in versions if x not in v.versions]
    return f" (on Kubernetes {_span(list(v.versions))}; not on {_span(rest)})"
