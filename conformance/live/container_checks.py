"""What only a container shows: the database container as the engine applied it (user,
read-only root, capabilities, limits) and as its own process sees it from inside. Each check
hands what it read to a judge, a pure function the tests feed broken facts. Targets without
a container (native) skip them; on Kubernetes the pod-level checks of kube_checks judge the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.quantity import parse_quantity

from conformance.plan import figure
from conformance.registry import Skip, live
from conformance.results import Finding

STS_FILE = "postgresql-product-change-statefulset.yaml"


@dataclass(frozen=True)
class ContainerFacts:
    """The database container as the engine reports it, and as seen from inside it."""
    user: str               # the engine's Config.User
    read_only: bool         # HostConfig.ReadonlyRootfs
    cap_drop: tuple         # HostConfig.CapDrop
    no_new_privileges: bool
    memory: int             # HostConfig.Memory, bytes (0: none)
    nano_cpus: int          # HostConfig.NanoCpus (0: none)
    uid_gid: str            # `id -u`:`id -g` of a process in the container
    cap_bnd: str            # CapBnd of the server process (/proc/1/status), hex: its bounding set
    root_options: str       # the mount options of / as the container's kernel view shows them
    mounts: dict            # container path -> "claim NAME" | "the image's anonymous volume ID" | "bind PATH" | "tmpfs"
    data_directory: str     # SHOW data_directory


def _facts(ctx) -> ContainerFacts:
    read = getattr(ctx.target, "container_facts", None)
    if read is None:
        raise Skip(f"needs a container target (docker); this is {ctx.target.name}")
    return read()


def _obj() -> str:
    return f"StatefulSet/{figure('name').expected}"


def _field(name: str) -> str:
    return f"containers[{figure('container').expected}].{name}"


def judge_hardening(f: ContainerFacts) -> list[Finding]:
    """Plan 9.1's least privilege, as applied: the image's postgres account, read-only root,
    no capabilities, no privilege escalation."""
    out = []
    want_user = figure("run-as-user").expected
    if f.user != want_user:
        out.append(Finding(STS_FILE, _obj(), _field("securityContext.runAsUser/runAsGroup"),
                           f"{want_user} as applied by the engine (plan 9.1)", f.user or "the image's default"))
    if f.uid_gid != want_user:
        out.append(Finding(STS_FILE, _obj(), _field("securityContext.runAsUser/runAsGroup"),
                           f"processes running as {want_user} (plan 9.1)", f.uid_gid))
    mounted_ro = f.root_options.split(",")[0] == "ro"
    if figure("read-only-root").expected and (not f.read_only or not mounted_ro):
        out.append(Finding(STS_FILE, _obj(), _field("securityContext.readOnlyRootFilesystem"),
                           "a read-only root: / mounted ro (plan 9.1)",
                           f"ReadonlyRootfs {str(f.read_only).lower()}, / mounted {f.root_options or 'unknown'}"))
    if "ALL" not in f.cap_drop or int(f.cap_bnd or "0", 16) != 0:
        out.append(Finding(STS_FILE, _obj(), _field("securityContext.capabilities.drop"),
                           "ALL dropped: the server's capability bounding set empty (plan 9.1)",
                           f"CapDrop {list(f.cap_drop)}, CapBnd {f.cap_bnd}"))
    if not f.no_new_privileges:
        out.append(Finding(STS_FILE, _obj(), _field("securityContext.allowPrivilegeEscalation"),
                           "false: no-new-privileges applied (plan 9.1)", "privilege escalation allowed"))
    return out


def judge_limits(f: ContainerFacts) -> list[Finding]:
    """Plan 3.1's limits as the engine enforces them."""
    out = []
    memory = int(parse_quantity(figure("memory-limit").expected))
    cpus = int(parse_quantity(figure("cpu-limit").expected) * 1_000_000_000)
    if f.memory != memory:
        out.append(Finding(STS_FILE, _obj(), _field("resources.limits.memory"),
                           f"{figure('memory-limit').expected} = {memory} bytes enforced (plan 3.1)",
                           f"{f.memory} bytes" if f.memory else "no limit"))
    if f.nano_cpus != cpus:
        out.append(Finding(STS_FILE, _obj(), _field("resources.limits.cpu"),
                           f"{figure('cpu-limit').expected} = {cpus / 1e9:g} CPU enforced (plan 3.1)",
                           f"{f.nano_cpus / 1e9:g} CPU" if f.nano_cpus else "no limit"))
    return out


def judge_mounts(f: ContainerFacts) -> list[Finding]:
    """The server's data directory lies on the data volume (else it dies with the container),
    which is mounted where the plan's layout puts it."""
    mount = figure("data-mount").expected
    out = []
    source = f.mounts.get(mount, "")
    # The data claim's, by name: another claim (the backup's, a stray one) is not where the plan
    # keeps the data, and its volume's lifecycle is another's.
    if source != f"claim {figure('data-claim').expected}":
        out.append(Finding(STS_FILE, _obj(), _field("volumeMounts[postgresql-data].mountPath"),
                           f"the data claim's volume at {mount} (plan 5.1)", source or "nothing mounted there"))
    if not (f.data_directory == mount or f.data_directory.startswith(mount + "/")):
        out.append(Finding(STS_FILE, _obj(), _field("env.PGDATA"),
                           f"the data directory below {mount}, on the volume (plan 5.1)", f.data_directory))
    return out


@live("live-9.1-container-hardening", "9.1", "the database container runs as postgres (999), read-only, with no capabilities")
def hardening(ctx):
    return judge_hardening(_facts(ctx))


@live("live-3.1-container-limits", "3.1", "CPU and memory limits as the container engine enforces them")
def limits(ctx):
    return judge_limits(_facts(ctx))


@live("live-5.1-data-on-volume", "5.1", "the server's data directory lies on the data volume")
def data_on_volume(ctx):
    return judge_mounts(_facts(ctx))
