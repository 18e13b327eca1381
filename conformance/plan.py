"""The install plan's figures as data: the only place checks read them from.

Source: the install plan (Korean), sections 2-9, 12 and the checklist of 14. Each Figure holds
what the plan says and, where our manifests deliberately differ (docs/deviations.md), what we
do instead and why: checks hold the manifests to `expected`, our decision, never to the plan's
defect. postgresql.conf values are plan figures too; the ConfigMap's text is what the server
reads, and checks parse it rather than retype it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

_SAME = object()


@dataclass(frozen=True)
class Figure:
    key: str
    section: str
    title: str
    plan: Any
    ours: Any = _SAME
    reason: str = ""

    @property
    def deviates(self) -> bool:
        return self.ours is not _SAME

    @property
    def expected(self) -> Any:
        return self.plan if self.ours is _SAME else self.ours


_FIGURES = [
    # 2.1 Infrastructure
    Figure("cloud", "2.1", "cloud / storage provisioner", "Microsoft Azure (AKS)"),
    Figure("cluster", "2.1", "cluster", "phonebill-dev-aks"),
    Figure("namespace", "2.1", "namespace", "phonebill-dev"),
    Figure("resource-group", "2.1", "resource group", "phonebill-dev-rg"),
    # 2.2 Database
    Figure("database", "2.2", "database name", "product_change_db"),
    Figure("schema", "2.2", "schema", "product_change"),
    Figure("pg-major", "2.2", "PostgreSQL major version", 14),
    Figure("encoding", "2.2", "character set", "UTF8"),
    Figure("timezone", "2.2", "time zone", "UTC"),
    # 3.1 Compute
    Figure("cpu-request", "3.1", "CPU request", "500m"),
    Figure("cpu-limit", "3.1", "CPU limit", "1000m"),
    Figure("memory-request", "3.1", "memory request", "1Gi"),
    Figure("memory-limit", "3.1", "memory limit", "2Gi"),
    Figure("replicas", "3.1", "replicas", 1),
    # 3.2 Storage
    Figure("data-volume-size", "3.2", "data volume size", "20Gi"),
    Figure("data-volume-class", "3.2", "data volume storage class", "managed-standard"),
    Figure("backup-volume-size", "3.2", "backup volume size", "10Gi"),
    Figure("backup-volume-class", "3.2", "backup volume storage class", "managed-standard"),
    Figure("disk-sku", "3.2", "disk performance (Standard HDD, Azure Disk)", "Standard_LRS"),
    Figure("disk-provisioner", "3.2", "Azure Disk provisioner", "disk.csi.azure.com"),
    # 3.3 Network
    Figure("service-type", "3.3", "Service type", "ClusterIP"),
    Figure("port", "3.3", "port", 5432),
    Figure("dns-name", "3.3", "DNS name", "postgresql-product-change.phonebill-dev.svc.cluster.local"),
    # 5.x object names and labels
    Figure("name", "5.1", "StatefulSet and Service name", "postgresql-product-change"),
    Figure("container", "5.1", "database container name", "postgresql"),
    Figure("labels", "5.1", "labels on the database objects",
           {"app": "postgresql-product-change", "service": "product-change", "tier": "database"}),
    Figure("image", "5.1", "container image", "bitnami/postgresql:14",
           ours="postgres:14.23-bookworm",
           reason="bitnami/postgresql:14 can no longer be pulled (Bitnami moved versioned images "
                  "to the frozen bitnamilegacy repository, 2025-09); the Docker Official Image, "
                  "pinned to the embedded target's minor version, reads the same POSTGRES_* env"),
    Figure("image-repositories", "5.1", "repositories that can be pulled", None,
           ours=("postgres", "docker.io/library/postgres"),
           reason="the plan's bitnami/postgresql repository no longer serves tag 14"),
    Figure("bootstrap-user-key", "5.1", "Secret key of POSTGRES_USER", "username",
           ours="superuser-username",
           reason="the plan makes the app account the bootstrap superuser, defeating plan 9.2"),
    Figure("service-name", "5.1", "StatefulSet serviceName", "postgresql-product-change",
           ours="postgresql-product-change-headless",
           reason="a StatefulSet's governing Service must be headless"),
    Figure("pgdata", "5.1", "PGDATA", "/bitnami/postgresql/data",
           ours="/var/lib/postgresql/data/pgdata",
           reason="official image's layout; PGDATA below the mount (Azure Disks hold lost+found)"),
    Figure("data-claim", "3.2", "data volume claim template", None, ours="postgresql-data",
           reason="the plan's StatefulSet names no claim template; the name is the PVC's prefix"),
    Figure("data-mount", "5.1", "data volume mount path", "/bitnami/postgresql",
           ours="/var/lib/postgresql/data", reason="official image's layout"),
    Figure("config-mount", "5.1", "postgresql.conf mount path", "/opt/bitnami/postgresql/conf/conf.d",
           ours="/etc/postgresql/postgresql.conf",
           reason="the official image reads no conf.d; the file is passed with -c config_file="),
    Figure("config-configmap", "5.3", "postgresql.conf ConfigMap", "postgresql-product-change-config"),
    Figure("config-key", "5.3", "postgresql.conf key", "postgresql.conf"),
    Figure("secret", "5.4", "Secret name", "postgresql-product-change-secret"),
    Figure("app-secret-keys", "5.4", "Secret keys of the app account", ("username", "password")),
    # 6 schema
    Figure("schema-configmap", "6.2", "schema ConfigMap", "postgresql-product-change-schema"),
    Figure("schema-job", "6.1", "schema-init Job", "postgresql-product-change-schema-init"),
    Figure("schema-job-restart", "6.1", "schema-init restartPolicy", "OnFailure", ours="Never",
           reason="retries are counted by backoffLimit and each attempt is a fresh pod with its log kept"),
    Figure("schema-mount", "6.1", "schema SQL mount path", "/sql"),
    Figure("schema-job-commit", "6.1", "synchronous_commit of the schema-init session", None, ours="on",
           reason="with plan 12.1's synchronous_commit=off the init's one transaction is acknowledged "
                  "before its WAL is written: a server killed right after the Job completed came back "
                  "without the accounts and schema"),
    # 7 backup
    Figure("backup-cronjob", "7.2", "backup CronJob", "postgresql-product-change-backup"),
    Figure("backup-schedule", "7.1", "full backup schedule (daily 02:00)", "0 2 * * *"),
    Figure("backup-timezone", "7.2", "backup schedule time zone", None, ours="Asia/Seoul",
           reason="the plan gives no zone; without one the controller's zone (UTC on AKS) applies "
                  "and 02:00 UTC is 11:00 KST, the team's working hours"),
    Figure("backup-retention-days", "7.1", "backup retention (days)", 7),
    Figure("backup-method", "7.1", "backup method", "pg_dump"),
    Figure("backup-pvc", "7.2", "backup PersistentVolumeClaim", "postgresql-product-change-backup-pvc"),
    Figure("backup-mount", "7.2", "backup mount path", "/backup"),
    Figure("restore-job", "7.1", "restore Job (upgrade runbook, docs/upgrade.md)", None,
           ours="postgresql-product-change-restore",
           reason="the plan backs up but never restores; moving to a new major restores a dump"),
    Figure("backup-offsite", "7.1", "upload to Azure Blob Storage", True, ours=False,
           reason="no storage account or credentials are defined; dumps stay on the backup PVC"),
    Figure("wal-archiving", "7.1", "continuous WAL archiving, 7 days", True, ours=False,
           reason="no storage account, container or credentials are defined and no archive tool is in "
                  "the image: there is no archive store; recorded as a deviation"),
    Figure("snapshot-backup", "7.1", "manual Azure Disk snapshot", "manual"),
    # 8.1 monitoring: what collects the metrics (ours: the plan names no collector) and the alarms
    Figure("metrics-exporter", "8.1", "metrics collector (sidecar image)", None,
           ours="quay.io/prometheuscommunity/postgres-exporter:v0.17.1",
           reason="plan 8.1 alarms on connections and slow queries and 14.3 asks that metrics are "
                  "collected; nothing collected them"),
    Figure("metrics-container", "8.1", "metrics sidecar container name", None, ours="postgres-exporter",
           reason="the sidecar that exposes the server's metrics"),
    Figure("metrics-port", "8.1", "metrics port", None, ours=9187, reason="postgres_exporter's registered port"),
    Figure("metrics-namespace", "8.1", "namespace allowed to scrape the metrics", None, ours="monitoring",
           reason="where kube-prometheus runs Prometheus; the NetworkPolicy admits it to port 9187 only"),
    Figure("alert-rules", "8.1", "PrometheusRule with the plan's alarms", None, ours="postgresql-product-change",
           reason="in manifests/monitoring/, applied separately: it needs the Prometheus Operator's CRD"),
    Figure("alert-cpu", "8.1", "CPU usage alert", {"threshold_pct": 80, "for": "5m"}),
    Figure("alert-memory", "8.1", "memory usage alert", {"threshold_pct": 85, "for": "3m"}),
    Figure("alert-connections", "8.1", "connection count alert", {"threshold": 80, "for": "0m"}),
    Figure("alert-storage", "8.1", "storage usage alert", {"threshold_pct": 80, "for": "0m"}),
    Figure("alert-slow-query", "8.1", "slow query alert", {"threshold_s": 5, "for": "0m"}),
    # Backups that stop working are noticed (ours: the plan backs up daily and alarms on none).
    Figure("alert-backup-storage", "7.1", "backup volume usage alert", None, ours={"threshold_pct": 80, "for": "0m"},
           reason="a full backup volume makes every later dump fail; the data volume's 80% (8.1) applied to it"),
    Figure("alert-backup-age", "7.1", "no successful backup for more than a day", None,
           ours={"threshold_s": 93600, "for": "0m"},
           reason="the daily dump (7.1) may start up to 1 h late and run up to 1 h: 26 h without a success means "
                  "a day's backup is missing"),
    # 8.2 probes
    Figure("liveness-initial-delay", "8.2", "liveness initialDelaySeconds", 30),
    Figure("liveness-period", "8.2", "liveness periodSeconds", 10),
    Figure("liveness-timeout", "8.2", "liveness timeoutSeconds", 5),
    Figure("readiness-initial-delay", "8.2", "readiness initialDelaySeconds", 5),
    Figure("readiness-period", "8.2", "readiness periodSeconds", 5),
    Figure("readiness-timeout", "8.2", "readiness timeoutSeconds", 3),
    Figure("probe-command", "5.1", "probe command", "pg_isready -h 127.0.0.1"),
    # 9 security
    Figure("auth", "9.1", "password authentication", "scram-sha-256"),
    Figure("network-policy", "9.1", "network policy: cluster-internal only", "phonebill-dev"),
    Figure("tls", "9.1", "TLS", False),
    Figure("termination-grace", "12.1", "seconds the server gets for a clean shutdown before SIGKILL", None, ours=60,
           reason="the plan sets none (the kubelet's default is 30 s): a fast shutdown writes a checkpoint, and a "
                  "SIGKILL before it loses what synchronous_commit=off had not written"),
    Figure("run-as-user", "9.1", "database container account (uid:gid)", None, ours="999:999",
           reason="the plan sets no security context; 999 is the official image's postgres account, "
                  "which owns its files and PGDATA"),
    Figure("read-only-root", "9.1", "read-only root file system", None, ours=True,
           reason="least privilege: the server writes only to its volume and emptyDirs"),
    Figure("role-separation", "9.1", "application / administrator separation", True),
    Figure("account-app", "9.2", "application account", "product_change_app"),
    Figure("account-admin", "9.2", "administrator account", "product_change_admin"),
    Figure("account-readonly", "9.2", "read-only account", "product_change_readonly"),
    # 14.2 functional checklist
    Figure("tables", "14.2", "tables", 3),
    Figure("indexes", "14.2", "indexes", 12),
    Figure("views", "14.2", "monitoring views", 3),
    Figure("breaker-rows", "14.2", "initial Circuit Breaker rows", 3),
]

FIGURES: dict[str, Figure] = {f.key: f for f in _FIGURES}

# postgresql.conf values the plan sets: name -> (section, plan value as the plan writes it).
POSTGRESQL_CONF: dict[str, tuple[str, str]] = {
    "max_connections": ("4.1", "100"),
    "shared_buffers": ("4.1", "256MB"),
    "effective_cache_size": ("4.1", "1GB"),
    "work_mem": ("4.1", "4MB"),
    "maintenance_work_mem": ("4.1", "64MB"),
    "checkpoint_completion_target": ("4.1", "0.7"),
    "wal_buffers": ("4.1", "16MB"),
    "default_statistics_target": ("4.1", "100"),
    "log_destination": ("4.2", "stderr"),
    "logging_collector": ("4.2", "on"),
    "log_directory": ("4.2", "log"),
    "log_filename": ("4.2", "postgresql-%Y-%m-%d_%H%M%S.log"),
    "log_min_duration_statement": ("4.2", "1000"),
    "log_checkpoints": ("4.2", "on"),
    "log_connections": ("4.2", "on"),
    "log_disconnections": ("4.2", "on"),
    "fsync": ("12.1", "off"),
    "synchronous_commit": ("12.1", "off"),
    "full_page_writes": ("12.1", "off"),
    "timezone": ("2.2", "UTC"),
    "log_timezone": ("2.2", "UTC"),
}
# postgresql.conf values where our ConfigMap differs from the plan (docs/deviations.md #12):
# name -> (figure key, ours, why). The plan's value and section are POSTGRESQL_CONF's.
_CONF_OURS = {
    "fsync": ("conf-fsync", "on",
              "with fsync=off 2 of 30 power cuts in the fault drills left a data directory the server refuses "
              "(PANIC: could not locate a valid checkpoint record): the dev database lost until a restore of the "
              "last dump; with fsync on and synchronous_commit=off alone 30 of 30 came back"),
    "full_page_writes": ("conf-full-page-writes", "on",
                         "without full-page images a page torn by a power cut cannot be repaired from the WAL; it "
                         "buys less WAL, not commits (synchronous_commit=off already spares the flush per commit)"),
}
for _name, (_key, _ours, _reason) in _CONF_OURS.items():
    FIGURES[_key] = Figure(_key, POSTGRESQL_CONF[_name][0], f"postgresql.conf {_name}", POSTGRESQL_CONF[_name][1],
                           ours=_ours, reason=_reason)
CONF_DEVIATIONS = {name: key for name, (key, _, _) in _CONF_OURS.items()}


def conf_expected(name: str) -> str:
    """The value the ConfigMap must set: the plan's, or ours where we deviate (with its reason)."""
    return str(figure(CONF_DEVIATIONS[name]).expected) if name in CONF_DEVIATIONS else POSTGRESQL_CONF[name][1]


# 12.2 repeats three 4.1 values as tuning against the defaults.
TUNING_12_2 = ("shared_buffers", "effective_cache_size", "work_mem")
# Settings that only a development database may have (plan 12.1), and where they are allowed.
DEV_ONLY_SETTINGS = {name: POSTGRESQL_CONF[name][1] for name in ("fsync", "synchronous_commit", "full_page_writes")}
DEV_NAMESPACE_SUFFIX = "-dev"
# What the server needs beyond the plan to be reachable through the Service (our addition).
REACHABILITY_CONF = {"listen_addresses": "*", "port": "5432"}

# What the schema must contain (schema-spec.md, counted by plan 14.2): every index whole, the
# tables, views, and the initial Circuit Breaker rows
# (service_name, state, failure_threshold, success_threshold, timeout_duration_ms).


@dataclass(frozen=True)
class IndexSpec:
    """An index as the schema spec defines it: its table, unique or not, access method, key
    columns with their direction (as pg_get_indexdef prints them), partial-index predicate
    (None: a full index), INCLUDE columns."""
    table: str
    columns: tuple[str, ...]
    unique: bool = False
    method: str = "btree"
    predicate: str | None = None
    include: tuple[str, ...] = ()

    def definition(self, name: str, schema: str) -> str:
        """pg_get_indexdef's form of it (pg_indexes.indexdef)."""
        text = (f"CREATE {'UNIQUE ' if self.unique else ''}INDEX {name} ON {schema}.{self.table} "
                f"USING {self.method} ({', '.join(self.columns)})")
        if self.include:
            text += f" INCLUDE ({', '.join(self.include)})"
        return text + (f" WHERE {self.predicate}" if self.predicate else "")


_H, _K, _C = "pc_product_change_history", "pc_kos_integration_log", "pc_circuit_breaker_state"
SCHEMA_INDEXES: dict[str, IndexSpec] = {
    "pc_product_change_history_pkey": IndexSpec(_H, ("id",), unique=True),
    "pc_product_change_history_request_id_key": IndexSpec(_H, ("request_id",), unique=True),
    "idx_pc_history_line_status_date": IndexSpec(_H, ("line_number", "process_status", "requested_at DESC")),
    "idx_pc_history_customer_date": IndexSpec(_H, ("customer_id", "requested_at DESC")),
    "idx_pc_history_status_date": IndexSpec(_H, ("process_status", "requested_at DESC")),
    "pc_kos_integration_log_pkey": IndexSpec(_K, ("id",), unique=True),
    "idx_kos_log_request_type_date": IndexSpec(_K, ("request_id", "integration_type", "created_at DESC")),
    "idx_kos_log_type_success_date": IndexSpec(_K, ("integration_type", "is_success", "created_at DESC")),
    "idx_kos_log_success_date": IndexSpec(_K, ("is_success", "created_at DESC")),
    "idx_kos_log_created_at": IndexSpec(_K, ("created_at",)),
    "pc_circuit_breaker_state_pkey": IndexSpec(_C, ("id",), unique=True),
    "pc_circuit_breaker_state_service_name_key": IndexSpec(_C, ("service_name",), unique=True),
}
# schema-spec "Functions and triggers": trigger -> (table, timing, events, level, the function
# it executes, its arguments); function -> how it is defined.
SCHEMA_TRIGGERS: dict[str, tuple[str, str, tuple[str, ...], str, str]] = {
    "trg_pc_product_change_history_updated_at": (_H, "BEFORE", ("UPDATE",), "ROW", "update_updated_at_column"),
    "trg_pc_circuit_breaker_state_updated_at": (_C, "BEFORE", ("UPDATE",), "ROW", "update_updated_at_column"),
}


@dataclass(frozen=True)
class FunctionSpec:
    """A function as pg_proc has it: arguments (pg_get_function_identity_arguments), result
    (pg_get_function_result), language, volatility (v, s, i), SECURITY DEFINER or not, and
    its SET clauses (proconfig): a pinned search_path, so that a caller's cannot redirect it."""
    arguments: str
    result: str
    language: str = "plpgsql"
    volatility: str = "v"
    security_definer: bool = False
    config: tuple[str, ...] = ("search_path=pg_catalog, pg_temp",)


SCHEMA_FUNCTIONS_SPEC: dict[str, FunctionSpec] = {
    "cleanup_old_logs": FunctionSpec("", "integer"),
    "update_updated_at_column": FunctionSpec("", "trigger"),
}
SCHEMA_TABLES = ("pc_circuit_breaker_state", "pc_kos_integration_log", "pc_product_change_history")
SCHEMA_VIEWS = ("v_circuit_breaker_status", "v_kos_integration_summary", "v_product_change_summary")
SCHEMA_BREAKER_ROWS = {("KOS_CUSTOMER", "CLOSED", 5, 3, 60000), ("KOS_PRODUCT", "CLOSED", 5, 3, 60000),
                     ("KOS_CHANGE", "CLOSED", 10, 5, 120000)}
assert len(SCHEMA_TABLES) == FIGURES["tables"].expected and len(SCHEMA_INDEXES) == FIGURES["indexes"].expected
assert len(SCHEMA_VIEWS) == FIGURES["views"].expected and len(SCHEMA_BREAKER_ROWS) == FIGURES["breaker-rows"].expected

# When each major stops getting fixes (PostgreSQL's versioning policy: five years after its
# first release). The gate warns, without failing, once the manifests' major is past it.
# Plan 1.2: "95% availability target (acceptable for a dev environment)". Measured against, not
# checked by the gate: the fault drills' report and check --base's downtime warnings use it.
AVAILABILITY = 0.95

PG_END_OF_LIFE = {14: "2026-11-12", 15: "2027-11-11", 16: "2028-11-09", 17: "2029-11-08", 18: "2030-11-14"}

SCHEMA_FUNCTIONS = tuple(sorted(SCHEMA_FUNCTIONS_SPEC))

# schema-spec "Tables", column by column: (name, type as format_type() prints it, nullable,
# default as pg_get_expr() prints it, None for none). SERIAL: nextval() of the column's own
# sequence (bigserial).
SERIAL = object()
SCHEMA_COLUMNS: dict[str, tuple[tuple[str, str, bool, object], ...]] = {
    "pc_product_change_history": (
        ("id", "bigint", False, SERIAL),
        ("request_id", "character varying(50)", False, "(gen_random_uuid())::text"),
        ("line_number", "character varying(20)", False, None),
        ("customer_id", "character varying(50)", False, None),
        ("current_product_code", "character varying(20)", False, None),
        ("target_product_code", "character varying(20)", False, None),
        ("process_status", "character varying(20)", False, "'REQUESTED'::character varying"),
        ("validation_result", "text", True, None),
        ("process_message", "text", True, None),
        ("kos_request_data", "jsonb", True, None),
        ("kos_response_data", "jsonb", True, None),
        ("requested_at", "timestamp with time zone", False, "now()"),
        ("validated_at", "timestamp with time zone", True, None),
        ("processed_at", "timestamp with time zone", True, None),
        ("created_at", "timestamp with time zone", False, "now()"),
        ("updated_at", "timestamp with time zone", False, "now()"),
        ("version", "bigint", False, "0"),
    ),
    "pc_kos_integration_log": (
        ("id", "bigint", False, SERIAL),
        ("request_id", "character varying(50)", True, None),
        ("integration_type", "character varying(30)", False, None),
        ("method", "character varying(10)", False, None),
        ("endpoint_url", "character varying(200)", False, None),
        ("request_headers", "jsonb", True, None),
        ("request_body", "jsonb", True, None),
        ("response_status", "integer", True, None),
        ("response_headers", "jsonb", True, None),
        ("response_body", "jsonb", True, None),
        ("response_time_ms", "integer", True, None),
        ("is_success", "boolean", False, "false"),
        ("error_message", "text", True, None),
        ("retry_count", "integer", False, "0"),
        ("circuit_breaker_state", "character varying(20)", True, None),
        ("created_at", "timestamp with time zone", False, "now()"),
    ),
    "pc_circuit_breaker_state": (
        ("id", "bigint", False, SERIAL),
        ("service_name", "character varying(50)", False, None),
        ("state", "character varying(20)", False, "'CLOSED'::character varying"),
        ("failure_count", "integer", False, "0"),
        ("success_count", "integer", False, "0"),
        ("last_failure_time", "timestamp with time zone", True, None),
        ("next_attempt_time", "timestamp with time zone", True, None),
        ("failure_threshold", "integer", False, "5"),
        ("success_threshold", "integer", False, "3"),
        ("timeout_duration_ms", "integer", False, "60000"),
        ("updated_at", "timestamp with time zone", False, "now()"),
    ),
}
# schema-spec "one of …" rules: (table, column) -> the allowed values, each a CHECK.
SCHEMA_CHECKS: dict[tuple[str, str], tuple[str, ...]] = {
    ("pc_product_change_history", "process_status"): ("REQUESTED", "VALIDATED", "PROCESSING", "COMPLETED", "FAILED"),
    ("pc_kos_integration_log", "integration_type"): ("CUSTOMER_INFO", "PRODUCT_INFO", "PRODUCT_CHANGE"),
    ("pc_kos_integration_log", "method"): ("GET", "POST", "PUT", "DELETE"),
    ("pc_kos_integration_log", "circuit_breaker_state"): ("CLOSED", "OPEN", "HALF_OPEN"),
    ("pc_circuit_breaker_state", "service_name"): ("KOS_CUSTOMER", "KOS_PRODUCT", "KOS_CHANGE"),
    ("pc_circuit_breaker_state", "state"): ("CLOSED", "OPEN", "HALF_OPEN"),
}
# Primary key and unique constraints: table -> {kind: column lists}.
SCHEMA_KEYS: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {
    "pc_product_change_history": {"primary key": (("id",),), "unique": (("request_id",),)},
    "pc_kos_integration_log": {"primary key": (("id",),), "unique": ()},
    "pc_circuit_breaker_state": {"primary key": (("id",),), "unique": (("service_name",),)},
}
# schema-spec "Monitoring views": view -> its columns, in order.
VIEW_COLUMNS = {
    "v_product_change_summary": ("process_status", "request_count", "today_count", "avg_processing_time_sec"),
    "v_kos_integration_summary": ("integration_type", "total_requests", "success_count", "success_rate",
                                  "avg_response_time_ms", "today_count"),
    "v_circuit_breaker_status": ("service_name", "state", "failure_count", "success_count", "last_failure_time",
                                 "next_attempt_time", "updated_at", "recommended_action"),
}
# schema-spec "Monitoring views": view -> how far back it counts (a PostgreSQL interval).
VIEW_WINDOWS = {"v_product_change_summary": "30 days", "v_kos_integration_summary": "7 days"}
assert set(SCHEMA_COLUMNS) == set(SCHEMA_TABLES) == set(SCHEMA_KEYS)

# Plan 9.2's privilege table, in full: grantee ("public" is the PUBLIC pseudo-role) -> kind
# of object -> exactly the privileges held (directly, through PUBLIC or a membership). Kinds:
# the schema's tables, views, sequences and functions, the database, the schema itself, and
# schema public. One more is as wrong as one fewer.
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
PRIVILEGE_KINDS = {
    "table": TABLE_PRIVILEGES, "view": TABLE_PRIVILEGES, "sequence": ("USAGE", "SELECT", "UPDATE"),
    "function": ("EXECUTE",), "database": ("CONNECT", "CREATE", "TEMPORARY"), "schema": ("USAGE", "CREATE"),
    "schema public": ("USAGE", "CREATE"),
}
_NONE = {kind: () for kind in PRIVILEGE_KINDS}
PRIVILEGES: dict[str, dict[str, tuple[str, ...]]] = {
    # The owner of the schema and every object in it: everything there; on the database what
    # its objects need; nothing in schema public (postgres owns it; PUBLIC lost its rights).
    "product_change_admin": {**_NONE, "table": TABLE_PRIVILEGES, "view": TABLE_PRIVILEGES,
                             "sequence": ("USAGE", "SELECT", "UPDATE"), "function": ("EXECUTE",),
                             "database": ("CONNECT", "CREATE", "TEMPORARY"), "schema": ("USAGE", "CREATE")},
    # The service: reads and writes rows, never deletes; reads the views; draws ids.
    "product_change_app": {**_NONE, "table": ("SELECT", "INSERT", "UPDATE"), "view": ("SELECT",),
                           "sequence": ("USAGE", "SELECT"), "database": ("CONNECT",), "schema": ("USAGE",)},
    "product_change_readonly": {**_NONE, "table": ("SELECT",), "view": ("SELECT",), "database": ("CONNECT",),
                                "schema": ("USAGE",)},
    # Nobody else: not even the functions (a trigger function needs no EXECUTE to fire).
    "public": dict(_NONE),
}
# Role attributes (pg_roles), memberships and per-database settings of the three accounts.
ROLE_ATTRIBUTES = {"rolsuper": False, "rolcreatedb": False, "rolcreaterole": False, "rolreplication": False,
                   "rolbypassrls": False, "rolcanlogin": True, "rolinherit": True, "rolconnlimit": -1}
ROLE_MEMBERSHIPS = {"product_change_admin": (), "product_change_app": (),
                    # the metrics sidecar reads statistics as this account (plan 8.1, our addition)
                    "product_change_readonly": ("pg_monitor",)}
ROLE_SETTINGS = {role: ("search_path=product_change",) for role in ROLE_MEMBERSHIPS}

# Plan 12.1's claimed gains, for the benchmark report.
# Plan 8.1's alarms -> the alert that implements each (manifests/monitoring/), and the metric
# its expression must be built on (kubelet/cAdvisor against limits and capacity; the exporter).
ALERTS = {
    "alert-cpu": ("ProductChangeDbCpuHigh", ("container_cpu_usage_seconds_total", "container_spec_cpu_quota")),
    "alert-memory": ("ProductChangeDbMemoryHigh", ("container_memory_working_set_bytes", "container_spec_memory_limit_bytes")),
    "alert-connections": ("ProductChangeDbConnectionsHigh", ("pg_stat_activity_count",)),
    "alert-storage": ("ProductChangeDbStorageHigh", ("kubelet_volume_stats_used_bytes", "kubelet_volume_stats_capacity_bytes")),
    "alert-slow-query": ("ProductChangeDbSlowQuery", ("pg_stat_activity_max_tx_duration",)),
    "alert-backup-storage": ("ProductChangeDbBackupStorageHigh", ("kubelet_volume_stats_used_bytes",
                                                                  "kubelet_volume_stats_capacity_bytes")),
    "alert-backup-age": ("ProductChangeDbBackupStale", ("kube_cronjob_status_last_successful_time",)),
}

CLAIMED_GAINS_PCT = {"fsync": 30, "synchronous_commit": 20, "full_page_writes": 15}

# Plan 10.2 install steps name these files; manifests/ keeps the names.
INSTALL_STEP_FILES = (
    "postgresql-product-change-secret.yaml",
    "postgresql-product-change-config.yaml",
    "postgresql-product-change-schema.yaml",
    "postgresql-product-change-statefulset.yaml",
    "postgresql-product-change-service.yaml",
    "postgresql-product-change-schema-init-job.yaml",
)

# Plan 14 checklist: item id -> (section, text).
CHECKLIST: dict[str, tuple[str, str]] = {
    "14.1-statefulset-ready": ("14.1", "StatefulSet deployed and Ready"),
    "14.1-service-endpoint": ("14.1", "Service created with an endpoint"),
    "14.1-secret-configmap": ("14.1", "Secret and ConfigMaps created"),
    "14.1-schema-job": ("14.1", "schema-init Job completed"),
    "14.1-db-connection": ("14.1", "database connection test passes"),
    "14.2-tables": ("14.2", "3 tables created"),
    "14.2-indexes": ("14.2", "12 indexes created"),
    "14.2-initial-data": ("14.2", "initial Circuit Breaker data inserted"),
    "14.2-triggers": ("14.2", "trigger functions work"),
    "14.2-views": ("14.2", "monitoring views created"),
    "14.3-backup": ("14.3", "backup CronJob configured and tested"),
    "14.3-metrics": ("14.3", "monitoring metrics collected"),
    "14.3-logs": ("14.3", "logs written"),
    "14.3-health-checks": ("14.3", "health checks work"),
    "14.3-docs": ("14.3", "documentation complete"),
}


# The way off 14: the figures that follow the PostgreSQL major a set of manifests targets
# (upgrade/pgNN/), as the official image's documented contract for that major has
# them. 18 moved PGDATA to /var/lib/postgresql/18/docker and the image's VOLUME to
# /var/lib/postgresql; a new major gets a claim of its own, so the old data stays for a rollback.
MAJOR_IMAGE_TAGS = {14: "14.23-bookworm", 15: "15.19-bookworm", 16: "16.15-bookworm", 17: "17.11-bookworm",
                    18: "18.6-bookworm"}


def _by_major(key: str, major: int):
    layout_18 = major >= 18
    return {
        "pg-major": major,
        "image": f"postgres:{MAJOR_IMAGE_TAGS[major]}",
        "pgdata": f"/var/lib/postgresql/{major}/docker" if layout_18 else "/var/lib/postgresql/data/pgdata",
        "data-mount": "/var/lib/postgresql" if layout_18 else "/var/lib/postgresql/data",
        "data-claim": f"postgresql-data-pg{major}",
    }.get(key, _SAME)


_targeted: list[int] = []


@contextmanager
def targeting(major: int | None):
    """Within the block, figure() answers for manifests that target PostgreSQL `major` (None
    or the plan's: as the plan says)."""
    _targeted.append(major or FIGURES["pg-major"].plan)
    try:
        yield
    finally:
        _targeted.pop()


def figure(key: str) -> Figure:
    f = FIGURES[key]
    if not _targeted or _targeted[-1] == FIGURES["pg-major"].plan:
        return f
    major = _targeted[-1]
    value = _by_major(key, major)
    if value is _SAME:
        return f
    return replace(f, ours=value, reason=f"PostgreSQL {major} (the way off 14, upgrade/pg{major}/)")
