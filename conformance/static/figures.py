"""Every figure of the plan's tables that the manifests carry, compared by meaning: quantities
as quantities (1000m == 1), cron schedules as schedules, images by repository and version."""

from __future__ import annotations

import re
import shlex
import zoneinfo

from croniter import croniter
from conformance.quantity import parse_quantity

from conformance import workload
from conformance.plan import figure
from conformance.registry import Check, Skip, add_static, static
from conformance.static import wraps_missing

CONTAINER = ("spec", "template", "spec", "containers")


def _db_index(sts) -> int:
    for i, c in enumerate(sts.get(CONTAINER) or []):
        if c.get("name") == figure("container").expected:
            return i
    return 0


def _quantity_equal(found, expected) -> bool:
    try:
        return found is not None and parse_quantity(str(found)) == parse_quantity(str(expected))
    except ValueError:
        return False


def _resource_check(key: str, kind: str, resource: str):
    fig = figure(key)

    @wraps_missing
    def check(ctx):
        sts = ctx.need("StatefulSet", "name")
        path = CONTAINER + (_db_index(sts), "resources", kind, resource)
        if not _quantity_equal(sts.get(path), fig.expected):
            yield ctx.finding(sts, path, fig.expected, sts.get(path))
    add_static(Check(f"plan-{fig.section}-{key}", fig.section, fig.title, check, ("14.1-statefulset-ready",), "static"))


for _key, _kind, _res in (("cpu-request", "requests", "cpu"), ("cpu-limit", "limits", "cpu"),
                          ("memory-request", "requests", "memory"), ("memory-limit", "limits", "memory")):
    _resource_check(_key, _kind, _res)


@static("plan-3.1-replicas", "3.1", "replicas", checklist=("14.1-statefulset-ready",))
@wraps_missing
def replicas(ctx):
    sts = ctx.need("StatefulSet", "name")
    if sts.get(("spec", "replicas")) != figure("replicas").expected:
        yield ctx.finding(sts, ("spec", "replicas"), figure("replicas").expected, sts.get(("spec", "replicas")))


@static("plan-3.2-data-volume", "3.2", "data volume: 20Gi on managed-standard", checklist=("14.1-statefulset-ready",))
@wraps_missing
def data_volume(ctx):
    sts = ctx.need("StatefulSet", "name")
    templates = sts.get(("spec", "volumeClaimTemplates")) or []
    if not templates:
        yield ctx.finding(sts, ("spec", "volumeClaimTemplates"), "a claim template for the data volume", None)
        return
    name = sts.get(("spec", "volumeClaimTemplates", 0, "metadata", "name"))
    if name != figure("data-claim").expected:
        # A renamed template is a new, empty disk for the pod (the old claim stays behind).
        yield ctx.finding(sts, ("spec", "volumeClaimTemplates", 0, "metadata", "name"), figure("data-claim").expected, name)
    mounts = [m.path for m in workload.database(ctx.manifests).mounts() if m.volume == name]
    if mounts != [figure("data-mount").expected]:
        yield ctx.finding(sts, ("spec", "template", "spec", "containers"), f"{name} mounted at {figure('data-mount').expected}",
                          mounts or "not mounted")
    base = ("spec", "volumeClaimTemplates", 0, "spec")
    size = sts.get(base + ("resources", "requests", "storage"))
    if not _quantity_equal(size, figure("data-volume-size").expected):
        yield ctx.finding(sts, base + ("resources", "requests", "storage"), figure("data-volume-size").expected, size)
    if sts.get(base + ("storageClassName",)) != figure("data-volume-class").expected:
        yield ctx.finding(sts, base + ("storageClassName",), figure("data-volume-class").expected,
                          sts.get(base + ("storageClassName",)))


@static("plan-3.2-backup-volume", "3.2", "backup volume: 10Gi on managed-standard", checklist=("14.3-backup",))
@wraps_missing
def backup_volume(ctx):
    pvc = ctx.need("PersistentVolumeClaim", "backup-pvc")
    size = pvc.get(("spec", "resources", "requests", "storage"))
    if not _quantity_equal(size, figure("backup-volume-size").expected):
        yield ctx.finding(pvc, ("spec", "resources", "requests", "storage"), figure("backup-volume-size").expected, size)
    if pvc.get(("spec", "storageClassName")) != figure("backup-volume-class").expected:
        yield ctx.finding(pvc, ("spec", "storageClassName"), figure("backup-volume-class").expected,
                          pvc.get(("spec", "storageClassName")))


@static("plan-3.2-storage-class", "3.2", "managed-standard: Azure Disk CSI, Standard HDD, expandable, WaitForFirstConsumer")
def storage_class(ctx):
    name = figure("data-volume-class").expected
    sc = ctx.manifests.find("StorageClass", name)
    if sc is None:
        yield ctx.finding(None, (), f"a StorageClass {name} (AKS has none built in)", "none")
        return
    for path, expected in ((("provisioner",), figure("disk-provisioner").expected),
                           (("parameters", "skuName"), figure("disk-sku").expected),
                           (("allowVolumeExpansion",), True),
                           (("volumeBindingMode",), "WaitForFirstConsumer")):
        if sc.get(path) != expected:
            yield ctx.finding(sc, path, expected, sc.get(path))


@static("plan-3.3-service", "3.3", "Service: ClusterIP, port 5432, the plan's DNS name",
        checklist=("14.1-service-endpoint",))
@wraps_missing
def service(ctx):
    svc = ctx.need("Service", "name")
    if svc.get(("spec", "type"), "ClusterIP") != figure("service-type").expected:
        yield ctx.finding(svc, ("spec", "type"), figure("service-type").expected, svc.get(("spec", "type")))
    ports = [p.get("port") for p in svc.get(("spec", "ports")) or []]
    if figure("port").expected not in ports:
        yield ctx.finding(svc, ("spec", "ports"), f"port {figure('port').expected}", ports)
    dns = f"{svc.name}.{svc.namespace}.svc.cluster.local"
    if dns != figure("dns-name").expected:
        yield ctx.finding(svc, ("metadata", "name"), figure("dns-name").expected, dns)


@static("plan-3.3-port", "3.3", "the server, its container, its probes and its clients use port 5432")
@wraps_missing
def port(ctx):
    expected = figure("port").expected
    sts = ctx.need("StatefulSet", "name")
    i = _db_index(sts)
    ports = [p.get("containerPort") for p in sts.get(CONTAINER + (i, "ports")) or []]
    if expected not in ports:
        yield ctx.finding(sts, CONTAINER + (i, "ports"), f"containerPort {expected}", ports)
    conf_port = ctx.conf.get("port")
    if conf_port is not None and conf_port.raw != str(expected):
        yield ctx.finding(ctx.config_map, ("data", "postgresql.conf"), f"port = {expected}", f"port = {conf_port.raw}")
    for c in (workload.database(ctx.manifests), workload.schema_init(ctx.manifests), workload.backup(ctx.manifests)):
        if c.env.get("PGPORT", str(expected)) != str(expected):
            yield ctx.finding(c.owner, c.path + ("env",), f"PGPORT={expected}", f"PGPORT={c.env.get('PGPORT')}")


@static("plan-2.2-database", "2.2", "database product_change_db everywhere it is named",
        checklist=("14.1-db-connection",))
def database(ctx):
    expected = figure("database").expected
    for c, var in ((workload.database(ctx.manifests), "POSTGRES_DB"),
                   (workload.schema_init(ctx.manifests), "PGDATABASE"),
                   (workload.backup(ctx.manifests), "PGDATABASE")):
        if c.env.get(var) != expected:
            yield ctx.finding(c.owner, c.path + ("env",), f"{var}={expected}", f"{var}={c.env.get(var)}")


@static("plan-2.2-encoding", "2.2", "the cluster is initialised with UTF-8")
def encoding(ctx):
    c = workload.database(ctx.manifests)
    args = shlex.split(c.env.get("POSTGRES_INITDB_ARGS", ""))
    expected = f"--encoding={figure('encoding').expected}"
    if not any(a.replace("-E", "--encoding=").upper() == expected.upper() for a in args):
        yield ctx.finding(c.owner, c.path + ("env",), f"POSTGRES_INITDB_ARGS with {expected}",
                          c.env.get("POSTGRES_INITDB_ARGS"))


@static("plan-2.2-pg-major", "2.2", "image: PostgreSQL 14, pinned to a patch release, from a pullable repository",
        checklist=("14.1-statefulset-ready",))
def image(ctx):
    expected = figure("image").expected
    repos = figure("image-repositories").expected
    major = figure("pg-major").expected
    for obj in ctx.manifests.objects:
        if obj.kind not in workload.POD_SPEC:
            continue
        for c in workload.containers(ctx.manifests, obj):
            if c.name == figure("metrics-container").expected:
                continue
            path = c.path + ("image",)
            repo, _, tag = c.image.partition(":")
            if repo not in repos:
                yield ctx.finding(obj, path, f"an image of {' or '.join(repos)} (bitnami/postgresql:14 "
                                  "can no longer be pulled)", c.image)
            elif not re.match(rf"{major}\.\d+(-|$)", tag):
                yield ctx.finding(obj, path, f"PostgreSQL {major} pinned to a patch release (e.g. {expected})", c.image)
            elif c.image != expected:
                yield ctx.finding(obj, path, expected, c.image)


@static("plan-5.1-labels", "5.1", "the plan's labels and the app.kubernetes.io labels on the database objects")
@wraps_missing
def labels(ctx):
    expected = figure("labels").expected
    sts = ctx.need("StatefulSet", "name")
    svc = ctx.need("Service", "name")
    for obj, path in ((sts, ("metadata", "labels")), (sts, ("spec", "template", "metadata", "labels")),
                      (svc, ("metadata", "labels"))):
        found = obj.get(path) or {}
        for k, v in expected.items():
            if found.get(k) != v:
                yield ctx.finding(obj, path + (k,), v, found.get(k))
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance"):
            if k not in found:
                yield ctx.finding(obj, path + (k,), "a recommended label", None)


@static("plan-5.1-bootstrap-user", "5.1", "the server is bootstrapped by a superuser that is not the app account",
        checklist=("14.1-db-connection",))
def bootstrap_user(ctx):
    c = workload.database(ctx.manifests)
    key = figure("bootstrap-user-key").expected
    source = c.secret_source("POSTGRES_USER")  # a secretKeyRef or POSTGRES_USER_FILE into a Secret volume
    if source is not None and source[2] != key:
        yield ctx.finding(c.owner, source[0], f"POSTGRES_USER from Secret key {key}", f"from key {source[2]}")
    for account in ("account-app", "account-admin", "account-readonly"):
        if c.value("POSTGRES_USER") == figure(account).expected:
            yield ctx.finding(c.owner, c.path + ("env",), "a bootstrap superuser apart from the plan 9.2 accounts",
                              f"POSTGRES_USER={c.value('POSTGRES_USER')}")


@static("plan-5.1-pgdata", "5.1", "PGDATA is a subdirectory of the data volume")
def pgdata(ctx):
    c = workload.database(ctx.manifests)
    value = c.env.get("PGDATA")
    if value != figure("pgdata").expected:
        yield ctx.finding(c.owner, c.path + ("env",), f"PGDATA={figure('pgdata').expected}", f"PGDATA={value}")
    data_mounts = [m.path for m in c.mounts() if m.volume == figure("data-claim").expected]
    if not data_mounts or not (value or "").startswith(data_mounts[0].rstrip("/") + "/"):
        yield ctx.finding(c.owner, c.path + ("volumeMounts",), "PGDATA strictly below the data volume's mount path "
                          "(lost+found sits at the volume root)", f"PGDATA={value}, mounts={data_mounts}")


@static("plan-5.3-config-mount", "5.3", "the server reads postgresql.conf from the ConfigMap")
def config_mount(ctx):
    c = workload.database(ctx.manifests)
    cm_name = figure("config-configmap").expected
    key = figure("config-key").expected
    if ctx.config_map is None or ctx.conf_text is None:
        yield ctx.finding(ctx.config_map, ("data", key), f"ConfigMap {cm_name} with key {key}", "none")
        return
    mount = c.mount_of_configmap(cm_name)
    expected = figure("config-mount").expected
    if mount is None:
        yield ctx.finding(c.owner, c.path + ("volumeMounts",), f"ConfigMap {cm_name} mounted", "not mounted")
        return
    items = {i.get("key"): i.get("path") for i in mount.source["configMap"].get("items") or []} or {key: key}
    file_path = f"{mount.path.rstrip('/')}/{items.get(key, key)}"
    if file_path != expected:
        yield ctx.finding(c.owner, c.path + ("volumeMounts",), expected, file_path)
    if f"config_file={file_path}" not in c.args:
        yield ctx.finding(c.owner, c.path + ("args",), f"-c config_file={file_path}", c.args)


@static("plan-5.4-secret", "5.4", "the Secret holds the app account under the plan's keys",
        checklist=("14.1-secret-configmap",))
@wraps_missing
def secret(ctx):
    obj = ctx.need("Secret", "secret")
    user_key, password_key = figure("app-secret-keys").expected
    user = ctx.manifests.secret_value(obj.name, user_key)
    if user != figure("account-app").expected:
        yield ctx.finding(obj, ("data", user_key), figure("account-app").expected, user)
    if not ctx.manifests.secret_value(obj.name, password_key):
        yield ctx.finding(obj, ("data", password_key), "a password", "none")


@static("plan-9.2-accounts", "9.2", "the Secret holds the three plan 9.2 accounts with distinct passwords")
@wraps_missing
def accounts(ctx):
    obj = ctx.need("Secret", "secret")
    passwords = {}
    for account, user_key, password_key in (("account-app", "username", "password"),
                                            ("account-admin", "admin-username", "admin-password"),
                                            ("account-readonly", "readonly-username", "readonly-password"),
                                            (None, "superuser-username", "superuser-password")):
        user = ctx.manifests.secret_value(obj.name, user_key)
        if account and user != figure(account).expected:
            yield ctx.finding(obj, ("data", user_key), figure(account).expected, user)
        if account is None and not user:
            yield ctx.finding(obj, ("data", user_key), "the bootstrap superuser's name", None)
        password = ctx.manifests.secret_value(obj.name, password_key)
        if not password:
            yield ctx.finding(obj, ("data", password_key), "a password", "none")
        elif password in passwords:
            yield ctx.finding(obj, ("data", password_key), f"a password apart from {passwords[password]}'s",
                              f"the same as {passwords[password]}'s")
        else:
            passwords[password] = password_key


def _probe_check(key: str, probe: str, field: str):
    fig = figure(key)

    @wraps_missing
    def check(ctx):
        sts = ctx.need("StatefulSet", "name")
        path = CONTAINER + (_db_index(sts), probe, field)
        if sts.get(path) != fig.expected:
            yield ctx.finding(sts, path, fig.expected, sts.get(path))
    add_static(Check(f"plan-8.2-{key}", "8.2", fig.title, check, ("14.3-health-checks",), "static"))


for _key, _probe, _field in (
        ("liveness-initial-delay", "livenessProbe", "initialDelaySeconds"),
        ("liveness-period", "livenessProbe", "periodSeconds"),
        ("liveness-timeout", "livenessProbe", "timeoutSeconds"),
        ("readiness-initial-delay", "readinessProbe", "initialDelaySeconds"),
        ("readiness-period", "readinessProbe", "periodSeconds"),
        ("readiness-timeout", "readinessProbe", "timeoutSeconds")):
    _probe_check(_key, _probe, _field)


@static("plan-5.1-probe-command", "5.1", "probes run pg_isready against the server's own port; a startupProbe guards liveness",
        checklist=("14.3-health-checks",))
def probe_command(ctx):
    c = workload.database(ctx.manifests)
    port = str(figure("port").expected)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        argv = c.probe_command(probe)
        path = c.path + (probe, "exec", "command")
        if not argv:
            yield ctx.finding(c.owner, path, "an exec probe running pg_isready", None)
            continue
        words = shlex.split(argv[-1]) if argv[0].endswith("sh") else argv
        text = " ".join(words)
        if "pg_isready" not in words and "pg_isready" not in text:
            yield ctx.finding(c.owner, path, "pg_isready", text)
            continue
        host = words[words.index("-h") + 1] if "-h" in words else None
        if host != "127.0.0.1":
            yield ctx.finding(c.owner, path, "-h 127.0.0.1 (the pod's own server)", f"-h {host}")
        probe_port = words[words.index("-p") + 1] if "-p" in words else "$PGPORT"
        resolved = c.env.get("PGPORT", port) if probe_port.strip('"') in ("$PGPORT", "${PGPORT}") else probe_port
        if resolved != port:
            yield ctx.finding(c.owner, path, f"the server's port {port}", f"-p {probe_port} (= {resolved})")


@static("plan-7.1-backup-schedule", "7.1", "backup daily at 02:00 in a stated time zone, runs never overlap",
        checklist=("14.3-backup",))
@wraps_missing
def backup_schedule(ctx):
    cron = ctx.need("CronJob", "backup-cronjob")
    schedule = cron.get(("spec", "schedule"), "")
    expected = figure("backup-schedule").expected
    if not croniter.is_valid(schedule):
        yield ctx.finding(cron, ("spec", "schedule"), f"a cron expression equal to {expected!r}", schedule)
    elif croniter(schedule).expanded != croniter(expected).expanded:
        yield ctx.finding(cron, ("spec", "schedule"), f"{expected!r} (daily at 02:00)", schedule)
    zone = cron.get(("spec", "timeZone"))
    expected_zone = figure("backup-timezone").expected
    if zone != expected_zone:
        yield ctx.finding(cron, ("spec", "timeZone"), expected_zone, zone)
    else:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            yield ctx.finding(cron, ("spec", "timeZone"), "an IANA time zone", zone)
    if cron.get(("spec", "concurrencyPolicy")) != "Forbid":
        yield ctx.finding(cron, ("spec", "concurrencyPolicy"), "Forbid", cron.get(("spec", "concurrencyPolicy")))
    for limit in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        value = cron.get(("spec", limit))
        if not isinstance(value, int) or value < 1:
            yield ctx.finding(cron, ("spec", limit), "at least 1 (finished jobs kept for inspection)", value)


@static("plan-7.2-backup-pvc", "7.2", "the backup writes to the backup claim at /backup", checklist=("14.3-backup",))
def backup_pvc(ctx):
    c = workload.backup(ctx.manifests)
    mounts = {m.path: m for m in c.mounts()}
    expected_path = figure("backup-mount").expected
    mount = mounts.get(expected_path)
    claim = (mount.source.get("persistentVolumeClaim") or {}).get("claimName") if mount else None
    if claim != figure("backup-pvc").expected:
        yield ctx.finding(c.owner, c.path + ("volumeMounts",), f"{figure('backup-pvc').expected} at {expected_path}",
                          f"{claim} at {expected_path}" if mount else "no mount at /backup")
    if c.env.get("BACKUP_DIR") != expected_path:
        yield ctx.finding(c.owner, c.path + ("env",), f"BACKUP_DIR={expected_path}", f"BACKUP_DIR={c.env.get('BACKUP_DIR')}")


def _not_here(key: str, reason: str, checklist=()):
    fig = figure(key)

    def check(ctx):
        raise Skip(reason)
    add_static(Check(f"plan-{fig.section}-{key}", fig.section, fig.title, check, tuple(checklist), "static"))


_not_here("cluster", "the cluster's name is seen only by the cluster target: live-2.1-cluster compares the "
                     "kubectl context's cluster with it (--target cluster)")
_not_here("resource-group", "the Azure resource group is not part of the manifests")
_not_here("snapshot-backup", "manual Azure Disk snapshots are an operator's action, not a manifest")

