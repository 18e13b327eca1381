"""A Kubernetes container, as the manifests define it, translated to a Docker container: the
one place that decides what the docker target and localenv's docker backend run.

Kubernetes -> Docker:
  image                                   image
  command / args                          entrypoint / command (command alone clears CMD)
  env (Secret values resolved)            environment
  runAsUser:runAsGroup, fsGroup           user, group_add (container level wins over pod)
  limits.memory / limits.cpu              mem_limit (bytes) / nano_cpus
  readOnlyRootFilesystem                  read_only
  allowPrivilegeEscalation: false         security_opt no-new-privileges
  capabilities drop / add                 cap_drop / cap_add
  configMap volume                        bind mount of a host directory holding its files
  secret volume                           the same, read-only, files of group fsGroup and defaultMode
  PVC / volumeClaimTemplate               a named Docker volume, or a host directory
  emptyDir                                tmpfs, mode 1777 (an emptyDir is world-writable)
  emptyDir medium Memory at /dev/shm      shm_size = sizeLimit
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.quantity import parse_quantity

from conformance import workload
from conformance.errors import InputError

DEFAULT_SHM = 64 * 1024 * 1024  # what Docker gives when nothing is said


@dataclass(frozen=True)
class Mount:
    target: str       # path in the container
    source: str       # host directory, Docker volume name, or "" for tmpfs
    kind: str         # "bind", "volume" or "tmpfs"
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...] | None
    env: dict = field(repr=False)  # holds passwords: never print it
    user: str | None
    group_add: tuple[str, ...]
    mem_limit: int | None
    nano_cpus: int | None
    read_only: bool
    cap_drop: tuple[str, ...]
    cap_add: tuple[str, ...]
    security_opt: tuple[str, ...]
    mounts: tuple[Mount, ...]
    shm_size: int | None
    labels: dict = field(default_factory=dict)

    def mount_at(self, target: str) -> Mount | None:
        return next((m for m in self.mounts if m.target == target), None)

    def docker_kwargs(self) -> dict:
        """Keyword arguments for docker's containers.create / containers.run."""
        kwargs = {
            "image": self.image, "name": self.name, "environment": dict(self.env), "labels": dict(self.labels),
            "read_only": self.read_only, "cap_drop": list(self.cap_drop), "cap_add": list(self.cap_add),
            "security_opt": list(self.security_opt), "group_add": list(self.group_add),
            "volumes": {m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                        for m in self.mounts if m.kind in ("bind", "volume")},
            "tmpfs": {m.target: "mode=1777" for m in self.mounts if m.kind == "tmpfs"},
        }
        optional = {"entrypoint": list(self.entrypoint) if self.entrypoint is not None else None,
                    "command": list(self.command) if self.command is not None else None,
                    "user": self.user, "mem_limit": self.mem_limit, "nano_cpus": self.nano_cpus,
                    "shm_size": self.shm_size}
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return kwargs


def _security(container: workload.Container) -> tuple[dict, dict]:
    pod = workload.pod_spec(container.owner).get("securityContext") or {}
    return pod, container.spec.get("securityContext") or {}


def _user(pod: dict, ctr: dict) -> str | None:
    uid = ctr.get("runAsUser", pod.get("runAsUser"))
    gid = ctr.get("runAsGroup", pod.get("runAsGroup"))
    if uid is None:
        return None
    return f"{uid}:{gid}" if gid is not None else str(uid)


def _limits(container: workload.Container) -> tuple[int | None, int | None]:
    limits = (container.spec.get("resources") or {}).get("limits") or {}
    where = f"{container.owner.file}: {container.owner.ref} container {container.name} resources.limits"
    try:
        memory = int(parse_quantity(limits["memory"])) if "memory" in limits else None
        cpus = int(parse_quantity(limits["cpu"]) * 1_000_000_000) if "cpu" in limits else None
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    return memory, cpus


def container_spec(container: workload.Container, name: str, sources: dict[str, str],
                   env: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> ContainerSpec:
    """sources: volume name -> host directory (configMap, and PVCs bound to a host folder) or
    Docker volume name (PVCs kept in Docker). Missing configMap/PVC sources are an error: a
    target that forgets one would silently run without it."""
    pod_sc, ctr_sc = _security(container)
    memory, cpus = _limits(container)
    mounts: list[Mount] = []
    shm_size = None
    for m in container.mounts():
        src = m.source
        if "emptyDir" in src:
            empty = src.get("emptyDir") or {}
            if m.path == "/dev/shm" and empty.get("medium") == "Memory":
                shm_size = int(parse_quantity(empty["sizeLimit"])) if empty.get("sizeLimit") else DEFAULT_SHM
            else:
                mounts.append(Mount(m.path, "", "tmpfs"))
            continue
        if m.volume not in sources:
            raise InputError(f"{container.owner.file}: {container.owner.ref} container {container.name}: no source for "
                             f"volume {m.volume!r} mounted at {m.path}")
        source = sources[m.volume]
        kind = "bind" if source.startswith("/") else "volume"
        read_only = bool(m.read_only) or "configMap" in src or "secret" in src  # the kubelet mounts both read-only
        mounts.append(Mount(m.path, source, kind, read_only))
    caps = ctr_sc.get("capabilities") or {}
    security_opt = ("no-new-privileges:true",) if ctr_sc.get("allowPrivilegeEscalation") is False else ()
    return ContainerSpec(
        name=name, image=container.image,
        entrypoint=tuple(container.command) if container.command else None,
        command=tuple(container.args) if container.args else (() if container.command else None),
        env={**container.env, **(env or {})},
        user=_user(pod_sc, ctr_sc),
        group_add=(str(pod_sc["fsGroup"]),) if pod_sc.get("fsGroup") is not None else (),
        mem_limit=memory, nano_cpus=cpus, read_only=bool(ctr_sc.get("readOnlyRootFilesystem")),
        cap_drop=tuple(caps.get("drop") or ()), cap_add=tuple(caps.get("add") or ()),
        security_opt=security_opt, mounts=tuple(mounts), shm_size=shm_size, labels=dict(labels or {}),
    )
