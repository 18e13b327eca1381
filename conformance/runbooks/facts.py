"""What a runbook names, read from the manifests it acts on (manifests/ for the plan's major,
upgrade/pgN/ for a later one), never typed by hand: a runbook for PostgreSQL 18 names 18's
claim, image and PGDATA because 18's overlay renders them."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from conformance import manifests as manifest_loader
from conformance import workload
from conformance.errors import InputError
from conformance.plan import FIGURES, figure, targeting


@dataclass(frozen=True)
class Facts:
    major: int
    manifests_dir: str  # as a runbook types it, relative to the repository's root
    restore_dir: str
    namespace: str
    statefulset: str
    pod: str
    container: str
    image: str
    data_claim: str  # the PersistentVolumeClaim the StatefulSet made for its pod
    pgdata: str
    data_mount: str
    grace_seconds: int
    schema_job: str
    backup_cronjob: str
    restore_job: str
    restore_request: str  # the ConfigMap that names the dump the restore Job restores
    database: str
    schema: str
    app_user: str
    resource_group: str
    init_containers: tuple[str, ...] = ()  # the pod's init containers (the stale-lock cleanup), in order
    # The StatefulSet's pod and database container security contexts, as written (a one-off pod
    # on the data disk runs as they do: same owner, no recursive chown of the disk).
    pod_security: dict = field(default_factory=dict)
    # activeDeadlineSeconds of the Jobs a runbook waits for: dump (the backup CronJob's), schema
    # (the init Job's), restore; and how long the startupProbe lets the server start.
    deadlines: dict = field(default_factory=dict)
    startup_seconds: int = 0
    container_security: dict = field(default_factory=dict)


def manifests_path(root: Path, major: int) -> Path:
    """The manifests of a major: manifests/ for the plan's, upgrade/pgN/ beside it for a later one."""
    from conformance.rehearsal import manifests_dir

    return manifests_dir(root / "manifests", major)


def restore_path(root: Path, major: int) -> Path:
    if major == FIGURES["pg-major"].plan:
        return root / "upgrade" / "restore"
    return root / "upgrade" / f"pg{major}" / "restore"


def _deadline(job, path: tuple[str, ...]) -> int:
    value = job.get(path + ("activeDeadlineSeconds",))
    if not isinstance(value, int):
        raise InputError(f"{job.file}: {job.ref} has no activeDeadlineSeconds (a runbook waits for it that long)")
    return value


def _startup_seconds(db) -> int:
    probe = db.spec.get("startupProbe") or {}
    return int(probe.get("initialDelaySeconds", 0)) + int(probe.get("periodSeconds", 10)) * int(
        probe.get("failureThreshold", 3))


def _restore_request(restore: manifest_loader.Manifests) -> str:
    """The ConfigMap the restore Job reads DUMP_FILE from (its configMapKeyRef)."""
    job = restore.find("Job", figure("restore-job").expected)
    if job is None:
        raise InputError(f"{restore.root}: no Job {figure('restore-job').expected}")
    for c in workload.pod_spec(job).get("containers") or []:
        for item in c.get("env") or []:
            ref = (item.get("valueFrom") or {}).get("configMapKeyRef") or {}
            if item.get("name") == "DUMP_FILE" and ref.get("name"):
                return ref["name"]
    raise InputError(f"{restore.root}: Job {job.name} takes DUMP_FILE from no ConfigMap (configMapKeyRef)")


def read(root: Path, major: int) -> Facts:
    """The facts of `major`'s manifests in the project at root."""
    mdir = manifests_path(root, major)
    rdir = restore_path(root, major)
    loaded = manifest_loader.load(mdir)
    restore = manifest_loader.load(rdir)
    with targeting(major):
        db = workload.database(loaded)
        sts = db.owner
        claim_template = figure("data-claim").expected
        if claim_template not in workload.claim_templates(sts):
            raise InputError(f"{mdir}: StatefulSet {sts.name} has no claim template {claim_template}")
        mount = next((m for m in db.mounts() if m.volume == claim_template), None)
        if mount is None:
            raise InputError(f"{mdir}: container {db.name} does not mount {claim_template}")
        context = workload.pod_spec(sts).get("securityContext") or {}
        backup = workload.backup(loaded)
        backup_mount = next((m for m in backup.mounts() if m.source.get("persistentVolumeClaim")), None)
        if backup_mount is None:
            raise InputError(f"{mdir}: the backup CronJob mounts no claim")
        secret = figure("secret").expected
        app_user = loaded.secret_value(secret, figure("app-secret-keys").expected[0])
        if not app_user:
            raise InputError(f"{mdir}: Secret {secret} has no {figure('app-secret-keys').expected[0]}")
        return Facts(
            major=major,
            manifests_dir=str(mdir.relative_to(root)),
            restore_dir=str(rdir.relative_to(root)),
            namespace=sts.namespace or figure("namespace").expected,
            statefulset=sts.name,
            pod=f"{sts.name}-0",
            container=db.name,
            image=db.image,
            data_claim=f"{claim_template}-{sts.name}-0",
            pgdata=db.env.get("PGDATA", ""),
            data_mount=mount.path,
            grace_seconds=int(workload.pod_spec(sts).get("terminationGracePeriodSeconds") or 30),
            schema_job=figure("schema-job").expected,
            backup_cronjob=backup.owner.name,
            restore_job=figure("restore-job").expected,
            restore_request=_restore_request(restore),
            database=db.env.get("POSTGRES_DB", figure("database").expected),
            schema=figure("schema").expected,
            app_user=app_user,
            resource_group=figure("resource-group").expected,
            init_containers=tuple(c.name for c in workload.init_containers(loaded, sts)),
            pod_security=copy.deepcopy(context),
            container_security=copy.deepcopy(db.spec.get("securityContext") or {}),
            deadlines={"dump": _deadline(backup.owner, ("spec", "jobTemplate", "spec")),
                       "schema": _deadline(workload.schema_init(loaded).owner, ("spec",)),
                       "restore": _deadline(restore.find("Job", figure("restore-job").expected), ("spec",))},
            startup_seconds=_startup_seconds(db),
        )
