"""Objects of the base and of now, paired by kind, namespace and name, and the fields that
differ between two versions of one object."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.manifests import K8sObject, Manifests

Path_ = tuple


@dataclass(frozen=True)
class Pair:
    base: K8sObject | None
    now: K8sObject | None

    @property
    def any(self) -> K8sObject:
        return self.now or self.base


def identity(obj: K8sObject) -> tuple:
    return obj.kind, obj.namespace or "", obj.name


def pairs(base: Manifests, now: Manifests) -> list[Pair]:
    """Every object of either side, in now's order, then what only the base has."""
    old = {identity(o): o for o in base.objects}
    out = [Pair(old.pop(identity(o), None), o) for o in now.objects]
    return out + [Pair(o, None) for o in old.values()]


def differences(a, b, path: Path_ = ()) -> list[Path_]:
    """The paths where a and b differ, as deep as both sides have the same shape: a list of
    another length differs as a whole, a key present on one side only at that key."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[Path_] = []
        for key in list(a) + [k for k in b if k not in a]:
            if key not in b or key not in a:
                out.append(path + (key,))
            else:
                out += differences(a[key], b[key], path + (key,))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b)) for p in differences(x, y, path + (i,))]
    return [] if a == b else [path]


def under(path: Path_, prefix: Path_) -> bool:
    return tuple(path[:len(prefix)]) == tuple(prefix)


def value(obj: K8sObject | None, path: Path_):
    return None if obj is None else obj.get(path)
