"""Fields whose wrong value keeps the pod from starting, a volume from binding, or loses data on
deletion or shutdown, held to the plan's choices: Azure Disk, uid 999, a read-only root file
system, a shutdown that may write its checkpoint. Each names what would happen."""

from __future__ import annotations

from conformance import workload
from conformance.plan import figure
from conformance.registry import static
from conformance.static import wraps_missing

# What the Azure Disk CSI driver can give a claim; ReadWriteMany and ReadOnlyMany never bind.
AZURE_DISK_ACCESS_MODES = ("ReadWriteOnce", "ReadWriteOncePod")
SOCKET_DIR = "/var/run/postgresql"  # the official image's unix_socket_directories


def _claims(ctx):
    """(object, path of the claim spec) for every claim and claim template."""
    for obj in ctx.manifests.objects:
        if obj.kind == "PersistentVolumeClaim":
            yield obj, ("spec",)
        elif obj.kind == "StatefulSet":
            for i, _ in enumerate(obj.get(("spec", "volumeClaimTemplates")) or []):
                yield obj, ("spec", "volumeClaimTemplates", i, "spec")


@static("plan-3.2-access-modes", "3.2", "every claim asks for an access mode Azure Disk offers")
def access_modes(ctx):
    for obj, base in _claims(ctx):
        modes = obj.get(base + ("accessModes",)) or []
        wrong = [m for m in modes if m not in AZURE_DISK_ACCESS_MODES]
        if not modes or wrong:
            yield ctx.finding(obj, base + ("accessModes",), "[ReadWriteOnce] (Azure Disk offers no other: the claim "
                              "would stay Pending and the pod unscheduled)", modes or None)


def _under(path: str, mount: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")


@static("plan-9.1-database-can-write", "9.1", "the database container runs as uid 999 and can write everywhere "
        "PostgreSQL writes, with its root file system read-only")
@wraps_missing
def database_can_write(ctx):
    c = workload.database(ctx.manifests)
    sts = c.owner
    pod_sc = workload.pod_spec(sts).get("securityContext") or {}
    sc = c.spec.get("securityContext") or {}
    uid, gid = (int(x) for x in figure("run-as-user").expected.split(":"))
    found_uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if found_uid != uid:
        yield ctx.finding(sts, c.path + ("securityContext", "runAsUser"), f"{uid} (the image's postgres user, owner of "
                          "its files: another uid cannot start the server)", found_uid)
    if pod_sc.get("fsGroup") != gid:
        yield ctx.finding(sts, workload.POD_SPEC[sts.kind] + ("securityContext", "fsGroup"),
                          f"{gid} (the disk's root is root-owned: without it initdb cannot create PGDATA)",
                          pod_sc.get("fsGroup"))
    if sc.get("readOnlyRootFilesystem") is not figure("read-only-root").expected:
        yield ctx.finding(sts, c.path + ("securityContext", "readOnlyRootFilesystem"), figure("read-only-root").expected,
                          sc.get("readOnlyRootFilesystem"))
    mounts = c.mounts()
    socket_dir = ctx.conf["unix_socket_directories"].raw.strip("'").split(",")[0].strip() \
        if "unix_socket_directories" in ctx.conf else SOCKET_DIR
    needed = {"PGDATA": c.env.get("PGDATA") or "", "the socket directory": socket_dir, "temporary files": "/tmp"}
    for what, path in needed.items():
        holder = max((m for m in mounts if _under(path, m.path)), key=lambda m: len(m.path), default=None)
        if holder is None or holder.read_only or "configMap" in holder.source or "secret" in holder.source:
            yield ctx.finding(sts, c.path + ("volumeMounts",), f"{path} ({what}) on a writable volume (the root file "
                              "system is read-only: the server would exit at start)",
                              f"{path} on {'the read-only root' if holder is None else f'{holder.volume} (read-only)'}")


@static("plan-3.2-data-kept-on-delete", "3.2", "deleting a claim, the StatefulSet or the namespace keeps the disks")
def data_kept(ctx):
    for sc in ctx.manifests.of_kind("StorageClass"):
        if sc.get(("reclaimPolicy",), "Delete") != "Retain":
            yield ctx.finding(sc, ("reclaimPolicy",), "Retain (Delete destroys the Azure disk with its claim)",
                              sc.get(("reclaimPolicy",), "Delete (the default)"))
    for sts in ctx.manifests.of_kind("StatefulSet"):
        policy = sts.get(("spec", "persistentVolumeClaimRetentionPolicy")) or {}
        for field in ("whenDeleted", "whenScaled"):
            if policy.get(field, "Retain") != "Retain":
                yield ctx.finding(sts, ("spec", "persistentVolumeClaimRetentionPolicy", field),
                                  "Retain (Delete removes the data claim with the StatefulSet)", policy.get(field))


@static("plan-12.1-clean-shutdown", "12.1", "the server gets the time for a clean shutdown before SIGKILL")
@wraps_missing
def clean_shutdown(ctx):
    sts = ctx.need("StatefulSet", "name")
    path = workload.POD_SPEC[sts.kind] + ("terminationGracePeriodSeconds",)
    grace, least = sts.get(path, 30), figure("termination-grace").expected
    if not isinstance(grace, int) or grace < least:
        yield ctx.finding(sts, path, f"at least {least} s (a SIGKILL before the shutdown checkpoint loses "
                          "the commits synchronous_commit=off had not written)", f"{grace} s")
