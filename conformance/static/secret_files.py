"""The Secret reaches containers as files, never as environment values: an environment is
shown by `kubectl describe`, inherited by every child process and copied into crash reports;
a file of a Secret volume is read only by who may read it."""

from __future__ import annotations

from conformance import workload
from conformance.registry import static
from conformance.static.pod_security import CONTAINER_GROUPS


def _passwords(ctx) -> dict[str, str]:
    """Secret key -> value, for the keys that hold a password."""
    out = {}
    for secret in ctx.manifests.of_kind("Secret"):
        keys = set(secret.get(("data",)) or {}) | set(secret.get(("stringData",)) or {})
        for key in keys:
            value = ctx.manifests.secret_value(secret.name, key)
            if "password" in key and value:
                out[key] = value
    return out


def _env_findings(ctx, obj, path, c: dict, files: dict, volumes: dict, passwords: dict):
    for ei, env in enumerate(c.get("env") or []):
        name = env.get("name", "")
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            yield ctx.finding(obj, path + ("env", ei, "valueFrom", "secretKeyRef"),
                              f"{name}_FILE naming a file of a Secret volume (the value out of the environment)",
                              f"{name} from Secret key {ref.get('key')}")
        value = env.get("value")
        if isinstance(value, str) and value in passwords.values():
            key = next(k for k, v in passwords.items() if v == value)
            yield ctx.finding(obj, path + ("env", ei, "value"), "no password written into the manifest",
                              f"{name} holds the Secret's {key} value")
        if name.endswith("_FILE") and value and value not in files:
            yield ctx.finding(obj, path + ("env", ei, "value"), "a file of a Secret volume this container mounts",
                              f"{value} (no such file: the program would find nothing there)")
        if name == "PGPASSFILE" and value:
            mount = _mount_of(c, volumes, value)
            empty = (mount or {}).get("emptyDir")
            if empty is None or empty.get("medium") != "Memory":
                yield ctx.finding(obj, path + ("env", ei, "value"),
                                  "a pgpass on an emptyDir of medium Memory (a password must not reach the node's disk)",
                                  f"{value} on {_kind(mount)}")
    for ei, source in enumerate(c.get("envFrom") or []):
        if source.get("secretRef"):
            yield ctx.finding(obj, path + ("envFrom", ei, "secretRef"), "the Secret mounted as files",
                              f"every key of {source['secretRef'].get('name')} as environment values")


def _mount_of(c: dict, volumes: dict, file: str) -> dict | None:
    best = None
    for m in c.get("volumeMounts") or []:
        base = str(m.get("mountPath", "")).rstrip("/") + "/"
        if file.startswith(base) and (best is None or len(base) > len(best[0])):
            best = (base, volumes.get(m.get("name")) or {})
    return best[1] if best else None


def _kind(volume: dict | None) -> str:
    if volume is None:
        return "the container's own file system"
    if "emptyDir" in volume:
        return "an emptyDir on the node's disk"
    kinds = [k for k in volume if k != "name"]
    return f"a {kinds[0]} volume" if kinds else "a volume"


@static("plan-5.4-secrets-as-files", "5.4", "the Secret reaches every container as read-only files, no password in "
        "any environment")
def secrets_as_files(ctx):
    passwords = _passwords(ctx)
    for obj in ctx.manifests.objects:
        if obj.kind not in workload.POD_SPEC:
            continue
        base = workload.POD_SPEC[obj.kind]
        spec = workload.pod_spec(obj)
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        for group in CONTAINER_GROUPS:
            for ci, c in enumerate(spec.get(group) or []):
                path = base + (group, ci)
                files = workload.secret_files(ctx.manifests, obj, c)
                yield from _env_findings(ctx, obj, path, c, files, volumes, passwords)
                for mi, m in enumerate(c.get("volumeMounts") or []):
                    if "secret" in (volumes.get(m.get("name")) or {}) and m.get("readOnly") is not True:
                        yield ctx.finding(obj, path + ("volumeMounts", mi, "readOnly"), True, m.get("readOnly"))
        for vi, vol in enumerate(spec.get("volumes") or []):
            secret = vol.get("secret")
            if secret is None:
                continue
            mode = secret.get("defaultMode", 0o644)
            if mode & 0o007:
                yield ctx.finding(obj, base + ("volumes", vi, "secret", "defaultMode"),
                                  "no access for other users (0440: owner root, group fsGroup)", oct(mode))
            for ii, item in enumerate(secret.get("items") or []):
                if item.get("mode", 0) & 0o007:
                    yield ctx.finding(obj, base + ("volumes", vi, "secret", "items", ii, "mode"),
                                      "no access for other users", oct(item["mode"]))
