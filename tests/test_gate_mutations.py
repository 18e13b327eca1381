"""Every static check fails on a manifest broken the way it guards against, and says where:
file, object, field, check id, plan section, expected and found."""

from __future__ import annotations

import pytest

from conformance import config_checksum, manifests, registry, tools
from conformance.plan import CONF_DEVIATIONS, POSTGRESQL_CONF, conf_expected
from conformance.results import Status
from conformance.static import load_all
from tests.project import DELETE, ProjectCopy, run_gate

STS = "postgresql-product-change-statefulset.yaml"
SVC = "postgresql-product-change-service.yaml"
JOB = "postgresql-product-change-schema-init-job.yaml"
CRON = "postgresql-product-change-backup-cronjob.yaml"
SECRET = "postgresql-product-change-secret.yaml"
PVC = "postgresql-product-change-backup-pvc.yaml"
NETPOL = "postgresql-product-change-networkpolicy.yaml"
JOBS_NETPOL = "postgresql-product-change-jobs-networkpolicy.yaml"
SC = "shared/managed-standard-storageclass.yaml"
NS = "shared/phonebill-dev-namespace.yaml"
C0 = ("spec", "template", "spec", "containers", 0)
POD = ("spec", "template", "spec")
CRON_POD = ("spec", "jobTemplate", "spec", "template", "spec")
CRON_C0 = CRON_POD + ("containers", 0)
RULES = "monitoring/postgresql-product-change-rules.yaml"
R = ("spec", "groups", 0, "rules")
C1 = ("spec", "template", "spec", "containers", 1)


def gate_of(project: ProjectCopy) -> dict:
    return run_gate(project.manifests, project.sql, project.root / "docs")


def yaml_set(file, kind, path, value):
    return lambda p: p.set(file, kind, path, value)


def conf(old, new):
    return lambda p: p.conf(old, new)


def both(*mutations):
    def apply(p):
        for m in mutations:
            m(p)
    return apply


def fails_with(project, mutate, check_id: str, fragment: str) -> list[str]:
    """Apply mutate; check_id must fail with a line holding fragment. Returns its lines."""
    mutate(project)
    result = gate_of(project)[check_id]
    lines = result.lines()
    assert result.status is Status.FAILED and fragment in "\n".join(lines), lines
    return lines


INIT0 = POD + ("initContainers", 0)

# check id -> (mutation, fragments the failure lines must contain)
MUTATIONS = {
    # The recovery step removed: a node crash's stale lock would need a person again.
    "plan-1.2-stale-lock-cleared": (yaml_set(STS, "StatefulSet", POD + ("initContainers",), DELETE),
                                    [STS, "StatefulSet/postgresql-product-change", "spec.template.spec.initContainers",
                                     "expected an init container that removes a stale postmaster.pid", "found nothing"]),
    "plan-8.1-alert-cpu": (lambda p: p.replace(f"manifests/{RULES}", "> 0.8\n          for: 5m", "> 0.9\n          for: 5m"),
                           [RULES, "PrometheusRule/postgresql-product-change", "spec.groups[0].rules[0].expr",
                            "expected ... > 0.8 (CPU usage alert", "found ... > 0.9"]),
    "plan-8.1-alert-memory": (yaml_set(RULES, "PrometheusRule", R + (1, "for"), "1m"),
                              ["spec.groups[0].rules[1].for", "expected 3m", "found 1m"]),
    "plan-8.1-alert-connections": (lambda p: p.replace(f"manifests/{RULES}", "> 80\n", "> 100\n"),
                                   ["spec.groups[0].rules[2].expr", "expected ... > 80", "found ... > 100"]),
    "plan-8.1-alert-storage": (yaml_set(RULES, "PrometheusRule", R + (3, "expr"),
                                        "max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_used_bytes) / 21474836480 > 0.8"),
                               ["spec.groups[0].rules[3].expr", "lacks kubelet_volume_stats_capacity_bytes"]),
    "plan-7.1-alert-backup-storage": (lambda p: p.replace(f"manifests/{RULES}", "> 0.8\n          for: 0m\n          labels:\n"
                                                          "            severity: warning\n            plan: \"7.1\"",
                                                          "> 0.95\n          for: 0m\n          labels:\n"
                                                          "            severity: warning\n            plan: \"7.1\""),
                                      [RULES, "spec.groups[0].rules[5].expr", "expected ... > 0.8", "found ... > 0.95"]),
    "plan-7.1-alert-backup-age": (yaml_set(RULES, "PrometheusRule", R + (6, "for"), "1h"),
                                  ["spec.groups[0].rules[6].for", "expected 0m", "found 1h"]),
    "plan-8.1-alert-slow-query": (yaml_set(RULES, "PrometheusRule", R + (4, "labels", "severity"), DELETE),
                                  ["spec.groups[0].rules[4].labels.severity", "expected a severity label", "found none"]),
    "plan-8.1-metrics-sidecar": (yaml_set(STS, "StatefulSet", POD + ("volumes", 5, "secret", "items", 0, "key"),
                                          "superuser-username"),
                                 [STS, "containers[1].env[1].value", "expected DATA_SOURCE_USER from Secret key readonly-username",
                                  "found DATA_SOURCE_USER from superuser-username"]),
    "plan-8.1-rules-valid": (yaml_set(RULES, "PrometheusRule", R + (0, "expr"), "sum(rate(x[5m]) > 0.8"),
                             [RULES, "PrometheusRule/postgresql-product-change", "plan-8.1-rules-valid",
                              "expected rules promtool accepts"]),
    "plan-3.1-cpu-request": (yaml_set(STS, "StatefulSet", C0 + ("resources", "requests", "cpu"), "250m"),
                             [STS, "StatefulSet/postgresql-product-change", "resources.requests.cpu", "expected 500m", "found 250m"]),
    "plan-3.1-cpu-limit": (yaml_set(STS, "StatefulSet", C0 + ("resources", "limits", "cpu"), "2"),
                           ["resources.limits.cpu", "expected 1000m", "found 2"]),
    "plan-3.1-memory-request": (yaml_set(STS, "StatefulSet", C0 + ("resources", "requests", "memory"), "512Mi"),
                                ["resources.requests.memory", "expected 1Gi", "found 512Mi"]),
    "plan-3.1-memory-limit": (yaml_set(STS, "StatefulSet", C0 + ("resources", "limits", "memory"), "1536Mi"),
                              ["resources.limits.memory", "expected 2Gi", "found 1536Mi"]),
    "plan-3.1-replicas": (yaml_set(STS, "StatefulSet", ("spec", "replicas"), 2), ["spec.replicas", "expected 1", "found 2"]),
    "plan-3.2-data-volume": (yaml_set(STS, "StatefulSet", ("spec", "volumeClaimTemplates", 0, "spec", "resources", "requests", "storage"), "10Gi"),
                             ["volumeClaimTemplates[0].spec.resources.requests.storage", "expected 20Gi", "found 10Gi"]),
    "plan-3.2-backup-volume": (yaml_set(PVC, "PersistentVolumeClaim", ("spec", "storageClassName"), "managed-premium"),
                               [PVC, "spec.storageClassName", "expected managed-standard", "found managed-premium"]),
    "plan-3.2-storage-class": (yaml_set(SC, "StorageClass", ("parameters", "skuName"), "Premium_LRS"),
                               [SC, "parameters.skuName", "expected Standard_LRS", "found Premium_LRS"]),
    "plan-3.3-service": (yaml_set(SVC, "Service", ("spec", "type"), "NodePort"),
                         [SVC, "Service/postgresql-product-change", "spec.type", "expected ClusterIP", "found NodePort"]),
    "plan-3.3-port": (yaml_set(STS, "StatefulSet", C0 + ("ports", 0, "containerPort"), 5433),
                      ["containers[0].ports", "containerPort 5432", "[5433]"]),
    "plan-2.2-database": (yaml_set(JOB, "Job", C0 + ("env", 2, "value"), "other_db"),
                          [JOB, "Job/postgresql-product-change-schema-init", "PGDATABASE=product_change_db", "PGDATABASE=other_db"]),
    "plan-2.2-encoding": (yaml_set(STS, "StatefulSet", C0 + ("env", 5, "value"), "--encoding=LATIN1 --auth-host=scram-sha-256"),
                          ["--encoding=UTF8", "LATIN1"]),
    "plan-2.2-pg-major": (yaml_set(STS, "StatefulSet", C0 + ("image",), "bitnami/postgresql:14"),
                          [STS, "containers[0].image", "can no longer be pulled", "found bitnami/postgresql:14"]),
    "plan-5.1-labels": (yaml_set(STS, "StatefulSet", ("metadata", "labels", "tier"), "db"),
                        ["metadata.labels.tier", "expected database", "found db"]),
    "plan-5.1-bootstrap-user": (yaml_set(STS, "StatefulSet", POD + ("volumes", 4, "secret", "items", 0, "key"), "username"),
                                ["containers[0].env[1].value", "expected POSTGRES_USER from Secret key superuser-username",
                                 "found from key username"]),
    "plan-5.1-pgdata": (yaml_set(STS, "StatefulSet", C0 + ("env", 3, "value"), "/var/lib/postgresql/data"),
                        ["PGDATA=/var/lib/postgresql/data/pgdata", "found PGDATA=/var/lib/postgresql/data"]),
    "plan-5.3-config-mount": (yaml_set(STS, "StatefulSet", C0 + ("args",), ["-c", "config_file=/etc/postgresql/other.conf"]),
                              ["containers[0].args", "config_file=/etc/postgresql/postgresql.conf", "other.conf"]),
    "plan-5.4-secret": (lambda p: p.set(SECRET, "Secret", ("data", "username"), p.b64("someone")),
                        [SECRET, "data.username", "expected product_change_app", "found someone"]),
    "plan-9.2-accounts": (lambda p: p.set(SECRET, "Secret", ("data", "readonly-password"), p.b64("dev_admin_password_2025")),
                          ["data.readonly-password", "apart from admin-password", "the same as admin-password"]),
    "plan-8.2-liveness-initial-delay": (yaml_set(STS, "StatefulSet", C0 + ("livenessProbe", "initialDelaySeconds"), 10),
                                        ["livenessProbe.initialDelaySeconds", "expected 30", "found 10"]),
    "plan-8.2-liveness-period": (yaml_set(STS, "StatefulSet", C0 + ("livenessProbe", "periodSeconds"), 20),
                                 ["livenessProbe.periodSeconds", "expected 10", "found 20"]),
    "plan-8.2-liveness-timeout": (yaml_set(STS, "StatefulSet", C0 + ("livenessProbe", "timeoutSeconds"), 1),
                                  ["livenessProbe.timeoutSeconds", "expected 5", "found 1"]),
    "plan-8.2-readiness-initial-delay": (yaml_set(STS, "StatefulSet", C0 + ("readinessProbe", "initialDelaySeconds"), 15),
                                         ["readinessProbe.initialDelaySeconds", "expected 5", "found 15"]),
    "plan-8.2-readiness-period": (yaml_set(STS, "StatefulSet", C0 + ("readinessProbe", "periodSeconds"), 10),
                                  ["readinessProbe.periodSeconds", "expected 5", "found 10"]),
    "plan-8.2-readiness-timeout": (yaml_set(STS, "StatefulSet", C0 + ("readinessProbe", "timeoutSeconds"), 1),
                                   ["readinessProbe.timeoutSeconds", "expected 3", "found 1"]),
    "plan-5.1-probe-command": (yaml_set(STS, "StatefulSet", C0 + ("readinessProbe", "exec", "command"),
                                        ["/bin/sh", "-c", "exec pg_isready -h 127.0.0.1 -p 5433"]),
                               ["readinessProbe.exec.command", "the server's port 5432", "-p 5433"]),
    "plan-7.1-backup-schedule": (yaml_set(CRON, "CronJob", ("spec", "schedule"), "0 3 * * *"),
                                 [CRON, "CronJob/postgresql-product-change-backup", "spec.schedule", "'0 2 * * *'", "found 0 3 * * *"]),
    "plan-7.2-backup-pvc": (yaml_set(CRON, "CronJob", CRON_C0 + ("env", 7, "value"), "/var/backup"),
                            ["BACKUP_DIR=/backup", "BACKUP_DIR=/var/backup"]),
    "plan-5-k8s-schema": (yaml_set(STS, "StatefulSet", C0 + ("resourcez",), {}),
                          [STS, "valid for Kubernetes 1.30 (strict)", "resourcez"]),
    "plan-3.3-conf-listen-addresses": (conf("listen_addresses = '*'", "listen_addresses = 'localhost'"),
                                       ["postgresql.conf", "listen_addresses = *", "listen_addresses = localhost"]),
    "plan-3.3-conf-port": (conf("port = 5432", "port = 5433"), ["port = 5432", "port = 5433"]),
    "plan-4-conf-parses": (conf("shared_buffers = 256MB", "shared_buffers = 256mb"), ["shared_buffers", "unit 'mb'"]),
    "plan-12.1-dev-only-namespace": (
        both(yaml_set("postgresql-product-change-config.yaml", "ConfigMap", ("metadata", "namespace"), "phonebill-prod")),
        ["postgresql-product-change-config.yaml", "ConfigMap/postgresql-product-change-config", "synchronous_commit",
         "outside a *-dev namespace", "phonebill-prod", "found synchronous_commit = off"]),
    "plan-4.1-memory-budget": (conf("work_mem = 4MB", "work_mem = 24MB"),
                               ["resources.limits.memory", "max_connections x work_mem", "found 2Gi"]),
    "plan-9.1-auth": (conf("password_encryption = scram-sha-256", "password_encryption = md5"),
                      ["password_encryption = scram-sha-256", "password_encryption = md5"]),
    "plan-7.1-wal-archiving": (conf("fsync = on", "fsync = on\narchive_mode = on"), ["archive_mode", "found archive_mode = on"]),
    "plan-10.2-kustomization-resources": (lambda p: p.replace("manifests/kustomization.yaml", "  - postgresql-product-change-networkpolicy.yaml\n", ""),
                                          ["kustomization.yaml", "postgresql-product-change-networkpolicy.yaml listed", "not listed"]),
    "plan-10.2-install-files": (both(lambda p: (p.manifests / SVC).rename(p.manifests / "svc.yaml"),
                                     lambda p: p.replace("manifests/kustomization.yaml", f"- {SVC}", "- svc.yaml")),
                                [f"file {SVC}", "missing"]),
    "plan-2.1-namespace": (yaml_set(SVC, "Service", ("metadata", "namespace"), "default"),
                           [SVC, "metadata.namespace", "expected phonebill-dev", "found default"]),
    "plan-5.1-selector-labels": (yaml_set(SVC, "Service", ("spec", "selector", "tier"), "db"),
                                 [SVC, "spec.selector", "subset of the database pod's labels"]),
    "plan-5.1-service-name": (yaml_set(STS, "StatefulSet", ("spec", "serviceName"), "postgresql-product-change"),
                              ["spec.serviceName", "expected postgresql-product-change-headless"]),
    "plan-5.2-service-ports": (yaml_set(SVC, "Service", ("spec", "ports", 0, "targetPort"), 5433),
                               [SVC, "spec.ports[0].targetPort", "a container port", "found 5433"]),
    "plan-5.4-secret-refs": (yaml_set(JOB, "Job", POD + ("volumes", 1, "secret", "items", 2, "key"), "pass"),
                             [JOB, "volumes[1].secret.items[2].key", "a key of Secret/postgresql-product-change-secret", "found pass"]),
    "plan-5.4-secrets-as-files": (yaml_set(STS, "StatefulSet", C0 + ("env", 2), {
                                      "name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {
                                          "name": "postgresql-product-change-secret", "key": "superuser-password"}}}),
                                  [STS, "StatefulSet/postgresql-product-change", "containers[0].env[2].valueFrom.secretKeyRef",
                                   "expected POSTGRES_PASSWORD_FILE naming a file of a Secret volume",
                                   "found POSTGRES_PASSWORD from Secret key superuser-password"]),
    "plan-9.1-pod-security-restricted": (yaml_set(JOB, "Job", POD + ("hostNetwork",), True),
                                         [JOB, "Job/postgresql-product-change-schema-init", "spec.template.spec.hostNetwork",
                                          "(Pod Security restricted)", "found True"]),
    "plan-9.1-pod-security-labels": (yaml_set(NS, "Namespace", ("metadata", "labels", "pod-security.kubernetes.io/warn"),
                                              "baseline"),
                                     [NS, "Namespace/phonebill-dev", "metadata.labels.pod-security.kubernetes.io/warn",
                                      "expected restricted", "found baseline"]),
    "plan-10.2-shared-apart": (lambda p: p.unshare(NS),
                               ["kustomization.yaml", "resources[", "Namespace/phonebill-dev in manifests/shared/",
                                "found phonebill-dev-namespace.yaml listed"]),
    "plan-3.2-access-modes": (yaml_set(PVC, "PersistentVolumeClaim", ("spec", "accessModes"), ["ReadWriteMany"]),
                              [PVC, "PersistentVolumeClaim/postgresql-product-change-backup-pvc", "spec.accessModes",
                               "expected [ReadWriteOnce] (Azure Disk offers no other", "found ['ReadWriteMany']"]),
    "plan-9.1-database-can-write": (yaml_set(STS, "StatefulSet", POD + ("securityContext", "fsGroup"), DELETE),
                                    [STS, "spec.template.spec.securityContext.fsGroup", "expected 999 (the disk's root",
                                     "found nothing"]),
    "plan-3.2-data-kept-on-delete": (yaml_set(SC, "StorageClass", ("reclaimPolicy",), "Delete"),
                                     [SC, "StorageClass/managed-standard", "reclaimPolicy", "expected Retain", "found Delete"]),
    "plan-12.1-clean-shutdown": (yaml_set(STS, "StatefulSet", POD + ("terminationGracePeriodSeconds",), 10),
                                 [STS, "spec.template.spec.terminationGracePeriodSeconds", "expected at least 60 s",
                                  "found 10 s"]),
    "plan-5.3-config-checksum": (conf("work_mem = 4MB", "work_mem = 8MB"),
                                 [STS, "spec.template.metadata.annotations.checksum/config", "expected sha256:",
                                  "run `python -m conformance config-checksum`", "found sha256:"]),
    "plan-14.3-policy-skips-explained": (lambda p: p.replace("docs/deviations.md", "with no bot here to bump it",
                                                             "with no bot to bump it"),
                                         [STS, "metadata.annotations.checkov.io/skip1",
                                          "expected its reason in docs/deviations.md, word for word",
                                          "CKV_K8S_43"]),
    "plan-5.3-configmap-refs": (yaml_set(STS, "StatefulSet", POD + ("volumes", 0, "configMap", "items", 0, "key"), "pg.conf"),
                                ["volumes[0].configMap.items[0].key", "postgresql.conf", "found pg.conf"]),
    "plan-5.1-volume-refs": (yaml_set(CRON, "CronJob", CRON_POD + ("volumes", 0, "persistentVolumeClaim", "claimName"), "nope"),
                             [CRON, "claimName", "a PersistentVolumeClaim in manifests/", "nope (no such claim)"]),
    "plan-6.1-schema-init-job": (lambda p: p.replace(f"manifests/{JOB}", "-v ON_ERROR_STOP=1 ", ""),
                                 [JOB, "containers[0].command", "ON_ERROR_STOP=1", "psql -X --no-password --single-transaction"]),
    "plan-6.1-schema-init-durable": (lambda p: p.replace(f"manifests/{JOB}", "synchronous_commit=on", "synchronous_commit=off"),
                                     [JOB, "Job/postgresql-product-change-schema-init", "containers[0].env[4].value",
                                      "expected PGOPTIONS=-c synchronous_commit=on", "found synchronous_commit=off"]),
    "plan-9.1-job-network-policy": (yaml_set(JOBS_NETPOL, "NetworkPolicy", ("spec", "podSelector"), {}),
                                    [JOBS_NETPOL, "NetworkPolicy/postgresql-product-change-jobs", "spec.podSelector",
                                     "expected app=postgresql-product-change in matchLabels: our pods only",
                                     "found every pod of the namespace"]),
    "plan-7.1-backup-script": (lambda p: p.replace(f"manifests/{CRON}", "set -euo pipefail\n", "\n"),
                               [CRON, "command", "set -euo pipefail", "no errexit/pipefail"]),
    "plan-7.1-backup-retention": (yaml_set(CRON, "CronJob", CRON_C0 + ("env", 8, "value"), "8"),
                                  ["RETENTION_DAYS=7", "RETENTION_DAYS=8"]),
    "plan-9.1-role-separation": (yaml_set(CRON, "CronJob", CRON_POD + ("volumes", 1, "secret", "items", 0, "key"), "username"),
                                 ["the admin (owner of every object)", "PGUSER=product_change_app"]),
    "plan-9.1-non-root": (yaml_set(JOB, "Job", C0 + ("securityContext", "runAsNonRoot"), False),
                          [JOB, "securityContext.runAsNonRoot", "expected True", "found False"]),
    "plan-9.1-no-privilege-escalation": (yaml_set(CRON, "CronJob", CRON_C0 + ("securityContext", "allowPrivilegeEscalation"), True),
                                         ["allowPrivilegeEscalation", "expected False", "found True"]),
    "plan-9.1-capabilities-dropped": (yaml_set(STS, "StatefulSet", C0 + ("securityContext", "capabilities", "drop"), []),
                                      ["capabilities.drop", "['ALL']", "found []"]),
    "plan-9.1-seccomp": (yaml_set(JOB, "Job", POD + ("securityContext", "seccompProfile"), DELETE),
                         ["securityContext.seccompProfile.type", "expected RuntimeDefault", "found nothing"]),
    "plan-9.1-no-service-account-token": (yaml_set(STS, "StatefulSet", POD + ("automountServiceAccountToken",), True),
                                          ["automountServiceAccountToken", "expected False", "found True"]),
    "plan-3.1-resources-everywhere": (yaml_set(JOB, "Job", C0 + ("resources", "limits"), DELETE),
                                      [JOB, "resources.limits.cpu", "expected a value"]),
    "plan-9.1-network-policy": (yaml_set(NETPOL, "NetworkPolicy", ("spec", "ingress", 0, "from"), [{"ipBlock": {"cidr": "0.0.0.0/0"}}]),
                                [NETPOL, "spec.ingress[0].from[0]", "pods of phonebill-dev only", "0.0.0.0/0"]),
    "plan-6.2-schema-configmap-matches-sql": (lambda p: p.replace("sql/03-data.sql", "RESET ROLE;", "-- edited\nRESET ROLE;"),
                                              ["postgresql-product-change-schema.yaml", "data.03-data.sql", "the text of sql/03-data.sql",
                                               "run nox -s schema"]),
    "plan-2.2-schema": (lambda p: p.replace("manifests/postgresql-product-change-schema.yaml",
                                            "CREATE SCHEMA IF NOT EXISTS product_change", "CREATE SCHEMA IF NOT EXISTS pc"),
                        ["ConfigMap/postgresql-product-change-schema", "CREATE SCHEMA product_change", "no such statement"]),
    "plan-14.3-deviations-recorded": (lambda p: p.replace("docs/deviations.md", "`backup-timezone`", "backup zone"),
                                      ["deviations.md", "`backup-timezone`", "found none"]),
}

# A different, valid value for each plan postgresql.conf setting.
_CONF_ALTERNATIVES = {
    "max_connections": "50", "shared_buffers": "128MB", "effective_cache_size": "4GB", "work_mem": "8MB",
    "maintenance_work_mem": "128MB", "checkpoint_completion_target": "0.9", "wal_buffers": "8MB",
    "default_statistics_target": "200", "log_destination": "'csvlog'", "logging_collector": "off",
    "log_directory": "'pg_log'", "log_filename": "'postgresql-%a.log'", "log_min_duration_statement": "5s",
    "log_checkpoints": "off", "log_connections": "off", "log_disconnections": "off", "fsync": "off",
    "synchronous_commit": "on", "full_page_writes": "off", "timezone": "'Asia/Seoul'", "log_timezone": "'Asia/Seoul'",
}


def _conf_line(name: str, value: str) -> str:
    return f"{name} = {value if name not in ('log_destination', 'log_directory', 'log_filename', 'timezone', 'log_timezone') else repr(value)}"


for _name, (_section, _) in POSTGRESQL_CONF.items():
    _value = conf_expected(_name)  # fsync and full_page_writes: ours, on (docs/deviations.md)
    _old = _conf_line(_name, _value)
    _new = f"{_name} = {_CONF_ALTERNATIVES[_name]}"
    _fragments = ["postgresql-product-change-config.yaml", "ConfigMap/postgresql-product-change-config",
                  "data.postgresql.conf (line", f"expected {_name} = {_value}", f"found {_name} = {_CONF_ALTERNATIVES[_name].strip(chr(39))}"]
    if _name in CONF_DEVIATIONS:  # ours: the message says why the plan's value is refused
        _fragments.append(f"(ours; the plan's {POSTGRESQL_CONF[_name][1]}: docs/deviations.md "
                          f"`{CONF_DEVIATIONS[_name]}`), found")
    MUTATIONS[f"plan-{_section}-{_name.replace('_', '-')}"] = (conf(_old, _new), _fragments)
    if _name in ("shared_buffers", "effective_cache_size", "work_mem"):
        MUTATIONS[f"plan-12.2-{_name.replace('_', '-')}"] = (conf(_old, _new), _fragments)


@pytest.mark.parametrize("check_id", sorted(MUTATIONS))
def test_check_rejects_its_mutation(project, check_id):
    if check_id == "plan-8.1-rules-valid" and tools.find("promtool") is None:
        pytest.skip(tools.reason("promtool"))
    mutate, fragments = MUTATIONS[check_id]
    mutate(project)
    result = gate_of(project)[check_id]
    assert result.status is Status.FAILED, f"{check_id} did not fail: {result.status} {result.message}"
    text = "\n".join(result.lines())
    assert f"{check_id} (plan {result.section})" in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_every_check_that_judges_has_a_mutation(project):
    results = gate_of(project)
    judging = {cid for cid, r in results.items() if r.status is not Status.SKIPPED}
    assert judging - set(MUTATIONS) == set()


def test_gate_passes_on_the_real_manifests(project):
    results = gate_of(project)
    bad = [line for r in results.values() if r.status in (Status.FAILED, Status.ERROR) for line in (r.lines() or [r.message])]
    assert bad == []


@pytest.mark.parametrize("old,new", [
    ("shared_buffers = 256MB", "shared_buffers = 262144kB"),
    ("shared_buffers = 256MB", "shared_buffers = 32768"),  # 8kB blocks, the base unit
    ("log_min_duration_statement = 1000", "log_min_duration_statement = 1s"),
    ("fsync = on", "fsync = true"),
    ("synchronous_commit = off", "synchronous_commit = false"),
    ("timezone = 'UTC'", "TimeZone = 'utc'"),
])
def test_equivalent_spellings_pass(project, old, new):
    project.conf(old, new)
    config_checksum.write(manifests.load(project.manifests))  # what the user runs after an edit
    results = gate_of(project)
    assert all(r.status is not Status.FAILED for r in results.values()), \
        [line for r in results.values() for line in r.lines()]


def test_equivalent_quantities_pass(project):
    project.set(STS, "StatefulSet", C0 + ("resources", "limits", "cpu"), "1")
    project.set(STS, "StatefulSet", C0 + ("resources", "limits", "memory"), "2048Mi")
    assert gate_of(project)["plan-3.1-cpu-limit"].status is Status.PASSED
    assert gate_of(project)["plan-3.1-memory-limit"].status is Status.PASSED


@pytest.mark.parametrize("pgoptions,passes", [
    (DELETE, False),                                      # the server's synchronous_commit=off applies
    ("-c search_path=x", False),
    ("-c synchronous_commit=on -c synchronous_commit=off", False),  # the last one wins
    ("-csynchronous_commit=local", True),
    ("--synchronous-commit=on", True),
    ("-c 'synchronous_commit=remote_apply'", True),
])
def test_init_session_commit_spellings(project, pgoptions, passes):
    env = C0 + ("env", 4)
    if pgoptions is DELETE:
        project.set(JOB, "Job", env, DELETE)
    else:
        project.set(JOB, "Job", env + ("value",), pgoptions)
    assert (gate_of(project)["plan-6.1-schema-init-durable"].status is Status.PASSED) == passes


def test_the_metrics_sidecar_needs_its_readiness_probe(project):
    project.set(STS, "StatefulSet", C1 + ("readinessProbe",), DELETE)
    result = gate_of(project)["plan-8.1-metrics-sidecar"]
    assert result.status is Status.FAILED
    assert "containers[1].readinessProbe: plan-8.1-metrics-sidecar (plan 8.1): expected an HTTP probe of the metrics port, found none" \
        in "\n".join(result.lines())


@pytest.mark.parametrize("mutate,fragment", [
    (yaml_set(CRON, "CronJob", CRON_POD[:-1] + ("metadata", "labels", "job-type"), DELETE),
     "CronJob/postgresql-product-change-backup spec.jobTemplate.spec.template.metadata.labels: "
     "plan-9.1-job-network-policy (plan 9.1): expected its pods selected by a NetworkPolicy"),
    (yaml_set(JOBS_NETPOL, "NetworkPolicy", ("spec", "egress", 1, "to", 0, "namespaceSelector"), DELETE),
     "spec.egress[1]: plan-9.1-job-network-policy (plan 9.1): expected egress only to the database on 5432"),
    (yaml_set(JOBS_NETPOL, "NetworkPolicy", ("spec", "ingress"), [{"from": [{"podSelector": {}}]}]),
     "spec.ingress: plan-9.1-job-network-policy (plan 9.1): expected no ingress to a Job pod"),
])
def test_job_pods_are_isolated(project, mutate, fragment):
    fails_with(project, mutate, "plan-9.1-job-network-policy", fragment)


def test_registry_ids_carry_their_section():
    load_all()
    for check in registry.STATIC.values():
        assert check.id.startswith(f"plan-{check.section}-"), check.id


def test_metrics_port_is_open_to_the_monitoring_namespace_only(project):
    project.set(NETPOL, "NetworkPolicy", ("spec", "ingress", 1, "from"), [{"podSelector": {}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}])
    result = gate_of(project)["plan-9.1-network-policy"]
    assert result.status is Status.FAILED
    assert "spec.ingress[1].from: plan-9.1-network-policy (plan 9.1): expected namespace monitoring only" in "\n".join(result.lines())


def test_rules_outside_manifests_kustomization_are_still_gated(project):
    """manifests/monitoring/ is a component of its own; its files carry their relative path."""
    loaded = manifests.load(project.manifests)
    assert loaded.find("PrometheusRule").file == RULES
    assert "monitoring" not in (loaded.kustomization.get("resources") or [])


@pytest.mark.parametrize("mutate,fragment", [
    (yaml_set(JOB, "Job", POD + ("volumes", 1, "secret", "defaultMode"), 0o444),
     "spec.template.spec.volumes[1].secret.defaultMode: plan-5.4-secrets-as-files (plan 5.4): expected no access for "
     "other users (0440: owner root, group fsGroup), found 0o444"),
    (yaml_set(CRON, "CronJob", CRON_POD + ("volumes", 2, "emptyDir", "medium"), DELETE),
     "env[6].value: plan-5.4-secrets-as-files (plan 5.4): expected a pgpass on an emptyDir of medium Memory "
     "(a password must not reach the node's disk), found /run/pgpass/pgpass on an emptyDir on the node's disk"),
    (yaml_set(STS, "StatefulSet", C1 + ("env", 2, "value"), "/run/secrets/postgres-exporter/password"),
     "containers[1].env[2].value: plan-5.4-secrets-as-files (plan 5.4): expected a file of a Secret volume this "
     "container mounts, found /run/secrets/postgres-exporter/password (no such file"),
    (yaml_set(STS, "StatefulSet", C0 + ("volumeMounts", 5, "readOnly"), False),
     "containers[0].volumeMounts[5].readOnly: plan-5.4-secrets-as-files (plan 5.4): expected True, found False"),
    (yaml_set(JOB, "Job", C0 + ("env", 0, "value"), "dev_admin_password_2025"),
     "env[0].value: plan-5.4-secrets-as-files (plan 5.4): expected no password written into the manifest, "
     "found PGHOST holds the Secret's admin-password value"),
])
def test_secrets_stay_files(project, mutate, fragment):
    lines = fails_with(project, mutate, "plan-5.4-secrets-as-files", fragment)
    assert "dev_admin_password_2025" not in "\n".join(lines), "a finding never shows a password"


@pytest.mark.parametrize("mutate,fragment", [
    (yaml_set(STS, "StatefulSet", C1 + ("securityContext", "privileged"), True),
     "containers[1].securityContext.privileged: plan-9.1-pod-security-restricted (plan 9.1): expected false or unset"),
    (yaml_set(CRON, "CronJob", CRON_POD + ("volumes", 0), {"name": "backup-volume", "hostPath": {"path": "/srv"}}),
     "volumes[0].hostPath: plan-9.1-pod-security-restricted (plan 9.1): expected a volume of type configMap"),
    (yaml_set(JOB, "Job", C0 + ("securityContext", "capabilities", "add"), ["SYS_ADMIN"]),
     "containers[0].securityContext.capabilities.add: plan-9.1-pod-security-restricted (plan 9.1): expected nothing "
     "but NET_BIND_SERVICE (Pod Security restricted), found ['SYS_ADMIN']"),
    (yaml_set(STS, "StatefulSet", POD + ("securityContext", "seccompProfile", "type"), "Unconfined"),
     "spec.template.spec.securityContext.seccompProfile.type: plan-9.1-pod-security-restricted (plan 9.1): expected "
     "RuntimeDefault or Localhost (Pod Security restricted), found Unconfined"),
    (yaml_set(STS, "StatefulSet", C0 + ("ports", 0, "hostPort"), 5432),
     "containers[0].ports[0].hostPort: plan-9.1-pod-security-restricted (plan 9.1): expected unset or 0"),
])
def test_pod_security_restricted_names_the_field(project, mutate, fragment):
    fails_with(project, mutate, "plan-9.1-pod-security-restricted", fragment)


def test_enforcing_pod_security_on_the_shared_namespace_fails(project):
    project.set(NS, "Namespace", ("metadata", "labels", "pod-security.kubernetes.io/enforce"), "restricted")
    result = gate_of(project)["plan-9.1-pod-security-labels"]
    assert result.status is Status.FAILED
    assert "expected no enforce label (the namespace is shared" in "\n".join(result.lines())


@pytest.mark.parametrize("value", ["CKV_K8S_43", "CKV_K8S_43=", "CKV_K8S_43=a=b", "digest=pinned by tag"])
def test_a_malformed_policy_skip_fails(project, value):
    project.set(STS, "StatefulSet", ("metadata", "annotations", "checkov.io/skip1"), value)
    result = gate_of(project)["plan-14.3-policy-skips-explained"]
    assert result.status is Status.FAILED
    assert "expected CKV_<ID>=<one-line reason> (one '=')" in "\n".join(result.lines())


@pytest.mark.parametrize("mutate,fragment", [
    (yaml_set(STS, "StatefulSet", C0 + ("volumeMounts", 2), {"name": "run", "mountPath": "/var/run/pg"}),
     "containers[0].volumeMounts: plan-9.1-database-can-write (plan 9.1): expected /var/run/postgresql (the socket "
     "directory) on a writable volume"),
    (yaml_set(STS, "StatefulSet", C0 + ("securityContext", "runAsUser"), 1001),
     "containers[0].securityContext.runAsUser: plan-9.1-database-can-write (plan 9.1): expected 999"),
    (yaml_set(STS, "StatefulSet", C0 + ("volumeMounts", 0, "readOnly"), True),
     "expected /var/lib/postgresql/data/pgdata (PGDATA) on a writable volume"),
])
def test_the_database_can_write_where_postgresql_writes(project, mutate, fragment):
    fails_with(project, mutate, "plan-9.1-database-can-write", fragment)


def test_config_checksum_command_updates_the_annotation(project):
    import subprocess
    import sys

    project.conf("work_mem = 4MB", "work_mem = 8MB")
    argv = [sys.executable, "-m", "conformance", "config-checksum", "--manifests", str(project.manifests)]
    check = subprocess.run([*argv, "--check"], capture_output=True, text=True, check=False)
    assert check.returncode == 1 and "run python -m conformance config-checksum" in check.stdout
    assert subprocess.run(argv, capture_output=True, text=True, check=False).returncode == 0
    assert gate_of(project)["plan-5.3-config-checksum"].status is Status.PASSED
    assert subprocess.run([*argv, "--check"], capture_output=True, text=True, check=False).returncode == 0


def _lock_step(new: str, old: str = 'rm -f -- "$lock"'):
    """The stale-lock step's script with old replaced by new."""
    return lambda p: p.replace(f"manifests/{STS}", old, new)


@pytest.mark.parametrize("mutate,fragments", [
    (yaml_set(STS, "StatefulSet", INIT0 + ("image",), "busybox:1.36"),
     ["initContainers[0].image", "expected postgres:14.23-bookworm", "found busybox:1.36"]),
    (yaml_set(STS, "StatefulSet", INIT0 + ("volumeMounts", 0, "mountPath"), "/data"),
     ["initContainers[0].volumeMounts", "expected postgresql-data at /var/lib/postgresql/data",
      "found postgresql-data at /data"]),
    (yaml_set(STS, "StatefulSet", INIT0 + ("env", 0, "value"), "/var/lib/postgresql/data"),
     ["initContainers[0].env", "expected PGDATA=/var/lib/postgresql/data/pgdata",
      "found PGDATA=/var/lib/postgresql/data"]),
    (yaml_set(STS, "StatefulSet", INIT0 + ("securityContext", "runAsUser"), 0),
     ["initContainers[0].securityContext.runAsUser", "expected 999", "found 0"]),
    (_lock_step('rm -f -- "$lock" "$PGDATA"/postmaster.opts'),
     ["initContainers[0].command", "expected rm of postmaster.pid only", 'found rm "$PGDATA"/postmaster.opts']),
    (_lock_step('rm -rf "$PGDATA/pg_wal"'),
     ["initContainers[0].command", 'found rm "$PGDATA/pg_wal"']),
    # The step names the lock and removes nothing, or another file of that name.
    (_lock_step('true'),
     ["initContainers[0].command", "expected rm of $PGDATA/postmaster.pid", "found no rm of $PGDATA/postmaster.pid"]),
    (_lock_step('lock=/tmp/postmaster.pid', old='lock="$PGDATA/postmaster.pid"'),
     ["initContainers[0].command", "found no rm of $PGDATA/postmaster.pid"]),
    (_lock_step('rm -f -- "$lock"; find "$PGDATA" -name "*.old" -delete'),
     ["initContainers[0].command", 'found find "$PGDATA" -name "*.old" -delete']),
    (_lock_step('mv -- "$lock" "$lock.old"'),
     ["initContainers[0].command", "found no rm of $PGDATA/postmaster.pid", 'found mv -- "$lock" "$lock.old"']),
    (_lock_step('unlink "$lock"; unlink "$PGDATA/postmaster.opts"'),
     ["initContainers[0].command", 'found unlink "$PGDATA/postmaster.opts"']),
])
def test_the_stale_lock_step_runs_as_the_database_on_its_data(project, mutate, fragments):
    """The step must read the server's own lock (same claim, mount and PGDATA), as the server's
    user with its image, and remove that file only."""
    mutate(project)
    result = gate_of(project)["plan-1.2-stale-lock-cleared"]
    assert result.status is Status.FAILED, result.status
    text = "\n".join(result.lines())
    for fragment in [STS, "StatefulSet/postgresql-product-change", "plan-1.2-stale-lock-cleared (plan 1.2)",
                     *fragments]:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_the_stale_lock_step_may_unlink_the_lock(project):
    """unlink removes the lock as rm does: a step that uses it clears what it must."""
    _lock_step('[ ! -e "$lock" ] || unlink "$lock"')(project)
    result = gate_of(project)["plan-1.2-stale-lock-cleared"]
    assert result.status is Status.PASSED, result.lines()


@pytest.mark.parametrize("old,new,fragments", [
    # The dump stays under its temporary name: nothing moves it into place (the comment that
    # names ln is no command).
    ('until ln -- "$tmp" "$final" 2>/dev/null; do', 'until true; do',
     ["plan-7.1-backup-script", "expected dump to a temporary file, then move (mv or ln) into place",
      "found no rename after the dump"]),
    ('pg_restore --file=/dev/null "$tmp"', 'true', ["expected the dump read back (pg_restore)", "found no verification"]),
])
def test_the_backup_script_rules_fail_on_a_script_that_breaks_them(project, old, new, fragments):
    project.replace(f"manifests/{CRON}", old, new)
    text = "\n".join(gate_of(project)["plan-7.1-backup-script"].lines())
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
