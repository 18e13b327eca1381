"""check --base on a throw-away git repository: pairs of commits, each change judged by what
applying it does to the running dev database, on the right file and line, with its remedy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conformance import config_checksum, manifests
from tests.project import DELETE, ROOT, ProjectCopy

STS = "postgresql-product-change-statefulset.yaml"
JOB = "postgresql-product-change-schema-init-job.yaml"
PVC = "postgresql-product-change-backup-pvc.yaml"
SC = "shared/managed-standard-storageclass.yaml"
POD = ("spec", "template", "spec")
C0 = POD + ("containers", 0)


class Repo(ProjectCopy):
    """The project's manifests, sql and docs in a git repository of their own, base committed."""

    def __init__(self, root):
        super().__init__(root)
        self.git("init", "-q", "-b", "main")
        self.commit("base")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=self.root,
                              capture_output=True, text=True, check=True).stdout

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def check(self, *args: str, base: str = "HEAD~1") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "conformance", "check", "--manifests", str(self.manifests),
                               "--k8s-versions", "1.30", "--base", base, *args],
                              capture_output=True, text=True, timeout=300, check=False, cwd=self.root)

    def line(self, file: str, kind: str, path: tuple) -> int:
        loaded = manifests.load(self.manifests)
        return next(o for o in loaded.objects if o.file == file and o.kind == kind).line(path)


@pytest.fixture
def repo(tmp_path):
    return Repo(tmp_path)


def change_lines(proc) -> list[str]:
    return [line for line in proc.stdout.splitlines() if ": change-" in line]


def test_an_unchanged_tree_has_no_change_findings(repo):
    repo.commit("nothing")
    proc = repo.check("-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert change_lines(proc) == []
    assert "change from HEAD~1" in proc.stdout.splitlines()[-1]


def test_a_base_that_does_not_exist_is_one_line_and_exit_2(repo):
    proc = repo.check(base="no-such-branch")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "--base no-such-branch: no such folder, and no such commit, branch or tag" in proc.stderr


def test_a_changed_selector_is_refused_with_the_orphan_remedy(repo):
    for path in (("spec", "selector", "matchLabels", "role"), ("spec", "template", "metadata", "labels", "role")):
        repo.set(STS, "StatefulSet", path, "primary")
    repo.commit("selector")
    proc = repo.check()
    assert proc.returncode == 1
    line = repo.line(STS, "StatefulSet", ("spec", "selector", "matchLabels", "role"))
    (refused,) = [l for l in change_lines(proc) if "change-refused" in l]
    assert refused.startswith(f"{STS}:{line}: StatefulSet/postgresql-product-change spec.selector.matchLabels.role: "
                              "change-refused (plan 10.2): spec.selector.matchLabels.role: nothing -> primary: "
                              "the API server refuses it (updates to a StatefulSet's spec outside replicas, ordinals, "
                              "template, updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds are "
                              "forbidden; ValidateStatefulSetUpdate (pkg/apis/apps/validation/validation.go))")
    assert "remedy: kubectl delete statefulset postgresql-product-change -n phonebill-dev --cascade=orphan" in refused
    assert any("change-downtime" in l for l in change_lines(proc)), "the template's labels changed too"


def test_a_renamed_claim_template_puts_the_data_at_risk(repo):
    repo.set(STS, "StatefulSet", ("spec", "volumeClaimTemplates", 0, "metadata", "name"), "pgdata")
    repo.set(STS, "StatefulSet", C0 + ("volumeMounts", 0, "name"), "pgdata")
    repo.commit("rename")
    proc = repo.check()
    line = repo.line(STS, "StatefulSet", ("spec", "volumeClaimTemplates", 0, "metadata", "name"))
    risk = [l for l in change_lines(proc) if "change-data-at-risk" in l]
    assert risk == [f"{STS}:{line}: StatefulSet/postgresql-product-change spec.volumeClaimTemplates[0].metadata.name: "
                    "change-data-at-risk (plan 3.2): spec.volumeClaimTemplates[0].metadata.name: postgresql-data -> "
                    "pgdata: the pod gets a new, empty disk pgdata-postgresql-product-change-0; the data stays on "
                    "postgresql-data-postgresql-product-change-0, unused; remedy: keep the template's name; to move "
                    "the data, dump it first (docs/operations.md)"]
    assert any("change-refused" in l for l in change_lines(proc)), "a claim template cannot change either"


def test_a_removed_claim_and_a_loosened_reclaim_policy(repo):
    (repo.manifests / PVC).unlink()
    repo.replace("manifests/kustomization.yaml", f"  - {PVC}\n", "")
    repo.set(SC, "StorageClass", ("reclaimPolicy",), "Delete")
    repo.commit("remove")
    lines = change_lines(repo.check())
    assert any(l.startswith(f"{PVC} (base):") and "PersistentVolumeClaim/postgresql-product-change-backup-pvc removed "
               "from the manifests: `kubectl apply -k` leaves it running, unmanaged" in l for l in lines), lines
    assert any(l.startswith(f"{SC}:") and "change-data-at-risk" in l and "reclaimPolicy: Retain -> Delete: disks made "
               "from now on are destroyed with their claim" in l for l in lines), lines
    assert any(l.startswith(f"{SC}:") and "change-refused" in l and "kubectl delete storageclass managed-standard" in l
               for l in lines), lines


def test_a_pod_template_change_is_a_downtime_warning_only(repo):
    repo.set(STS, "StatefulSet", ("spec", "template", "metadata", "annotations", "example.com/owner"), "team-a")
    repo.commit("annotation")
    proc = repo.check("--format", "github")
    assert proc.returncode == 0, proc.stdout
    line = repo.line(STS, "StatefulSet", ("spec", "template", "metadata", "annotations", "example.com/owner"))
    (warning,) = [l for l in proc.stdout.splitlines() if l.startswith("::warning") and "title=change-" in l]
    assert warning.startswith(f"::warning file={repo.manifests / STS},line={line},title=change-downtime (plan 1.2)::")
    assert "the single database pod restarts" in warning and "SIGKILL after 60 s" in warning
    assert not [l for l in proc.stdout.splitlines() if l.startswith("::error")]


ADDED = "max_connections = 100\nmax_locks_per_transaction = 128"  # read at start only (postmaster)


def test_a_setting_read_at_start_without_a_restart_has_no_effect(repo):
    repo.conf("max_connections = 100", ADDED)
    repo.commit("max_connections")
    proc = repo.check()
    cm = manifests.load(repo.manifests).find("ConfigMap", "postgresql-product-change-config")
    conf_line = next(i for i, l in enumerate((repo.manifests / "postgresql-product-change-config.yaml").read_text()
                                              .splitlines(), 1) if "max_locks_per_transaction = 128" in l)
    (no_effect,) = [l for l in change_lines(proc) if "change-no-effect" in l]
    assert no_effect.startswith(f"postgresql-product-change-config.yaml:{conf_line}: {cm.ref} data.postgresql.conf: "
                                "change-no-effect (plan 4.1): max_locks_per_transaction: unset -> 128: takes effect only after a "
                                "restart (pg_settings context postmaster)")
    assert "remedy: update the checksum annotation (`python -m conformance config-checksum`)" in no_effect


def test_with_the_checksum_updated_the_setting_is_a_restart(repo):
    repo.conf("max_connections = 100", ADDED)
    config_checksum.write(manifests.load(repo.manifests))
    repo.commit("max_connections and its checksum")
    proc = repo.check()
    assert proc.returncode == 0, proc.stdout
    assert not [l for l in change_lines(proc) if "change-no-effect" in l]
    (downtime,) = [l for l in change_lines(proc) if "change-downtime" in l]
    assert "the pod template changes (to apply max_locks_per_transaction (postmaster))" in downtime


def test_a_changed_job_template_is_refused_while_the_job_exists_with_its_remedy(repo):
    repo.set(JOB, "Job", C0 + ("env", 3, "value"), "9")
    repo.commit("job")
    proc = repo.check()
    assert proc.returncode == 0, "a warning: the Job's TTL removes it, and apply then makes it anew"
    (refused,) = [l for l in change_lines(proc) if "change-refused-in-a-state" in l]
    assert f"{JOB}:" in refused and "spec.template.spec.containers[0].env[3].value: 5 -> 9" in refused
    assert "remedy: kubectl delete job postgresql-product-change-schema-init -n phonebill-dev" in refused


def test_the_plans_v1_manifests_as_base(repo):
    """What our first apply does on a cluster the plan installed (its v1.0 manifests as printed)."""
    proc = repo.check(base=str(ROOT / "tests" / "data" / "plan-v1.0"))
    lines = change_lines(proc)
    refused = [l for l in lines if "change-refused" in l]
    assert any("spec.serviceName: postgresql-product-change -> postgresql-product-change-headless" in l
               and "spec.selector.matchLabels.tier: nothing -> database" in l for l in refused), lines
    assert any(l.startswith(f"{JOB}:") for l in refused), "the plan's Job never expires: its template cannot change"
    risk = [l for l in lines if "change-data-at-risk" in l]
    assert any("env[3].value: /bitnami/postgresql/data -> /var/lib/postgresql/data/pgdata" in l for l in risk), risk
    assert any("volumeMounts[0].mountPath: /bitnami/postgresql -> /var/lib/postgresql/data" in l for l in risk), risk
    assert any("change-downtime" in l for l in lines)
    assert not [l for l in lines if "change-schema (plan" in l]  # the plan's folder has no sql/: skipped, said with -v
    verbose = repo.check("-v", base=str(ROOT / "tests" / "data" / "plan-v1.0"))
    assert "skipped change-schema (plan 6.1): the base" in verbose.stdout and "has no sql/ to compare with" in verbose.stdout


def test_a_base_commit_without_manifests_has_everything_new(repo):
    repo.git("checkout", "-q", "--orphan", "empty")
    repo.git("rm", "-rq", "--cached", ".")
    repo.git("commit", "-q", "--allow-empty", "-m", "empty")
    empty = repo.git("rev-parse", "HEAD").strip()
    repo.git("checkout", "-q", "-f", "main")
    proc = repo.check(base=empty)
    assert proc.returncode == 0 and change_lines(proc) == [], proc.stdout + proc.stderr


def test_a_schema_change_needs_a_migration_until_one_is_there(repo):
    """On scratch embedded servers: the base's SQL then this tree's, against this tree's fresh."""
    from conformance import schema_configmap

    repo.replace("sql/02-schema.sql", "    line_number          varchar(20)  NOT NULL,",
                 "    line_number          varchar(32)  NOT NULL,")
    schema_configmap.write(repo.sql, repo.manifests)
    repo.commit("widen line_number")
    proc = repo.check()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (drift,) = [l for l in change_lines(proc) if "change-schema" in l]
    assert drift.startswith("sql/: column product_change.pc_product_change_history.line_number: change-schema "
                            "(plan 6.1): updated database: character varying(20) not null; fresh: character varying(32) "
                            "not null: a fresh database (where every check runs) has this; the running dev database, "
                            "updated by the init Job, would not"), drift
    assert "remedy: add a migration, sql/migrations/NNNN-what.sql" in drift
    (repo.sql / "migrations" / "0001-widen-line-number.sql").write_text(
        "ALTER TABLE product_change.pc_product_change_history ALTER COLUMN line_number TYPE varchar(32);\n")
    schema_configmap.write(repo.sql, repo.manifests)
    repo.commit("its migration")
    proc = repo.check("-v", base="HEAD~2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [l for l in change_lines(proc) if "change-schema" in l] == []
    assert "03m0001-widen-line-number.sql" in (repo.manifests / "postgresql-product-change-schema.yaml").read_text()


def test_the_schema_comparison_can_be_left_out_and_says_so(repo):
    repo.replace("sql/03-data.sql", "RESET ROLE;", "-- edited\nRESET ROLE;")
    repo.commit("comment")
    proc = repo.check("-v", "--no-schema-compare")
    assert "skipped change-schema (plan 6.1): sql/ changed, and --no-schema-compare was given: not compared" in proc.stdout


def test_a_changed_seed_row_is_skipped_by_on_conflict_and_found(repo):
    from conformance import schema_configmap

    repo.replace("sql/03-data.sql", "('KOS_CHANGE', 'CLOSED', 10, 5, 120000)", "('KOS_CHANGE', 'CLOSED', 10, 5, 180000)")
    schema_configmap.write(repo.sql, repo.manifests)
    repo.commit("seed")
    (drift,) = [l for l in change_lines(repo.check()) if "change-schema" in l]
    assert drift.startswith("sql/: rows of product_change.pc_circuit_breaker_state: change-schema (plan 6.1): "
                            "updated database:"), drift
    assert "120000" in drift.split("fresh:")[0] and "180000" in drift.split("fresh:")[1]


def test_a_setting_postgresql_does_not_know_or_will_not_change(repo):
    """A misspelt setting stops the server at start; a read-only one is ignored: both say so."""
    repo.conf("max_connections = 100", "max_connections = 100\nmax_locks_per_transactions = 128\nblock_size = 16384")
    config_checksum.write(manifests.load(repo.manifests))
    repo.commit("two wrong settings")
    no_effect = [l for l in change_lines(repo.check()) if "change-no-effect" in l]
    assert any("max_locks_per_transactions: unset -> 128: PostgreSQL 14 has no such setting: the server refuses to "
               "start with it; remedy: check its name" in l for l in no_effect), no_effect
    assert any("block_size: unset -> 16384: a read-only setting (context internal): the server ignores it" in l
               for l in no_effect), no_effect


def test_a_custom_dotted_setting_is_accepted_not_a_failed_start(repo):
    """auto_explain.* or any prefix.name: PostgreSQL takes it (a placeholder, or the extension's
    own); it used to be reported as a setting that stops the server."""
    repo.conf("max_connections = 100", "max_connections = 100\nauto_explain.log_min_duration = '5s'\nteam.owner = 'pc'")
    repo.commit("custom settings")
    no_effect = [l for l in change_lines(repo.check()) if "change-no-effect" in l]
    assert len(no_effect) == 2 and not [l for l in no_effect if "refuses to start" in l], no_effect
    assert all("takes effect only after a reload (SIGHUP) or a restart (a custom setting (prefix.name))" in l
               for l in no_effect), no_effect


def test_a_major_without_saved_contexts_says_whose_it_used():
    from conformance.changes import consequences, settings_context
    from conformance.changes.diff import pairs

    base = manifests.load(ROOT / "manifests")
    now = manifests.load(ROOT / "manifests")
    cm = now.find("ConfigMap", "postgresql-product-change-config")
    cm.data["data"]["postgresql.conf"] += "\nmax_locks_per_transactions = 128\n"
    (pair,) = [p for p in pairs(base, now) if p.any.kind == "ConfigMap" and p.any.name == cm.name]
    assert settings_context.contexts(19)[1] == 18
    found, _ = consequences._settings(pair, None, 19)
    (finding,) = [j.finding for j in found]
    assert "PostgreSQL 19 has no such setting (contexts of PostgreSQL 18: none saved for 19)" in finding.expected


# -- what the API server says, rule by rule (changes/api_rules.py) ------------------------------------
SVC_H = "postgresql-product-change-headless-service.yaml"
SECRET = "postgresql-product-change-secret.yaml"
CM = "postgresql-product-change-config.yaml"


def _judged(tmp_path, change, base_change=None, versions=("1.30",)) -> dict[str, list]:
    """consequences.judge on a base copy and a changed copy of the manifests: kind -> findings."""
    from conformance.changes import consequences

    base, now = ProjectCopy(tmp_path / "base"), ProjectCopy(tmp_path / "now")
    if base_change:
        base_change(base)
        base_change(now)
    change(now)
    out: dict[str, list] = {}
    for j in consequences.judge(manifests.load(base.manifests), manifests.load(now.manifests), 14, versions=list(versions)):
        out.setdefault(j.kind, []).append(j.finding)
    return out


def _set(file, kind, path, value, name=None):
    return lambda p: p.set(file, kind, path, value, name=name)


MISSED_REFUSALS = {
    "a claim's volumeAttributesClassName, gate off (before 1.34)": (
        _set(PVC, "PersistentVolumeClaim", ("spec", "volumeAttributesClassName"), "fast"),
        _set(PVC, "PersistentVolumeClaim", ("spec", "volumeAttributesClassName"), "standard"), ("1.33",),
        "update is forbidden when the VolumeAttributesClass feature gate is disabled"),
    "a claim's volumeAttributesClassName to empty (1.34)": (
        _set(PVC, "PersistentVolumeClaim", ("spec", "volumeAttributesClassName"), ""),
        _set(PVC, "PersistentVolumeClaim", ("spec", "volumeAttributesClassName"), "standard"), ("1.34",),
        "update from non-nil value to an empty string is forbidden"),
    "a Secret's type": (_set(SECRET, "Secret", ("type",), "kubernetes.io/basic-auth"), None, ("1.30",),
                        "a Secret's type"),
    "immutable: true removed": (_set(SECRET, "Secret", ("immutable",), DELETE), _set(SECRET, "Secret", ("immutable",), True),
                                ("1.30",), "field is immutable when `immutable` is set"),
    "immutable set false": (_set(CM, "ConfigMap", ("immutable",), False), _set(CM, "ConfigMap", ("immutable",), True),
                            ("1.30",), "field is immutable when `immutable` is set"),
    "a Job's podFailurePolicy": (_set(JOB, "Job", ("spec", "podFailurePolicy"), {"rules": []}),
                                 _set(JOB, "Job", ("spec", "ttlSecondsAfterFinished"), DELETE), ("1.30",), "immutable"),
    "a Job's backoffLimitPerIndex": (_set(JOB, "Job", ("spec", "backoffLimitPerIndex"), 2),
                                     _set(JOB, "Job", ("spec", "ttlSecondsAfterFinished"), DELETE), ("1.30",), "immutable"),
    "a Job's managedBy": (_set(JOB, "Job", ("spec", "managedBy"), "example.com/queue"),
                          _set(JOB, "Job", ("spec", "ttlSecondsAfterFinished"), DELETE), ("1.30",), "immutable"),
    "a Job's successPolicy": (_set(JOB, "Job", ("spec", "successPolicy"), {"rules": [{"succeededCount": 1}]}),
                              _set(JOB, "Job", ("spec", "ttlSecondsAfterFinished"), DELETE), ("1.30",), "immutable"),
    "a Service's primary IP family": (_set(SVC_H, "Service", ("spec", "ipFamilies"), ["IPv6"]),
                                      _set(SVC_H, "Service", ("spec", "ipFamilies"), ["IPv4"]), ("1.30",),
                                      "the primary IP family may not change"),
    "a Service's loadBalancerClass": (
        _set(SVC_H, "Service", ("spec", "loadBalancerClass"), "b.example/lb"),
        lambda p: (p.set(SVC_H, "Service", ("spec", "type"), "LoadBalancer"),
                   p.set(SVC_H, "Service", ("spec", "loadBalancerClass"), "a.example/lb")), ("1.30",),
        "may not change while the Service stays of type LoadBalancer"),
    "a Service's healthCheckNodePort": (
        _set(SVC_H, "Service", ("spec", "healthCheckNodePort"), 31002),
        lambda p: (p.set(SVC_H, "Service", ("spec", "type"), "LoadBalancer"),
                   p.set(SVC_H, "Service", ("spec", "externalTrafficPolicy"), "Local"),
                   p.set(SVC_H, "Service", ("spec", "healthCheckNodePort"), 31001)), ("1.30",),
        "externalTrafficPolicy Local"),
}


@pytest.mark.parametrize("case", sorted(MISSED_REFUSALS))
def test_a_change_the_api_server_refuses_is_refused(tmp_path, case):
    """Each of these passed check --base before: the rules did not know them."""
    change, base_change, versions, words = MISSED_REFUSALS[case]
    found = _judged(tmp_path, change, base_change, versions)
    refused = found.get("refused", [])
    assert refused and any(words in f.expected for f in refused), found
    assert all("pkg/apis/" in f.expected for f in refused), "each cites the validation it mirrors"


def test_a_claim_that_grows_before_it_is_bound_is_said_to_be_refused_until_then(tmp_path):
    """The backup claim's class waits for the first consumer: until the first backup, it is Pending."""
    found = _judged(tmp_path, _set(PVC, "PersistentVolumeClaim", ("spec", "resources", "requests", "storage"), "20Gi"))
    (finding,) = found["refused-in-a-state"]
    assert "a claim grows only while it is Bound" in finding.expected and "WaitForFirstConsumer" in finding.expected
    assert "refused" not in found


FALSE_ALARMS = {
    "reclaimPolicy written at its default": (lambda p: p.set("shared/managed-standard-storageclass.yaml", "StorageClass",
                                                             ("reclaimPolicy",), "Delete"),
                                             lambda p: p.set("shared/managed-standard-storageclass.yaml", "StorageClass",
                                                             ("reclaimPolicy",), DELETE)),
    "volumeBindingMode written at its default": (
        lambda p: p.set("shared/managed-standard-storageclass.yaml", "StorageClass", ("volumeBindingMode",), "Immediate"),
        lambda p: p.set("shared/managed-standard-storageclass.yaml", "StorageClass", ("volumeBindingMode",), DELETE)),
    "volumeMode written at its default": (_set(PVC, "PersistentVolumeClaim", ("spec", "volumeMode"), "Filesystem"), None),
    "revisionHistoryLimit written at its default": (_set(STS, "StatefulSet", ("spec", "revisionHistoryLimit"), 10), None),
    "a headless Service's clusterIP: None left out": (_set(SVC_H, "Service", ("spec", "clusterIP"), DELETE), None),
}


@pytest.mark.parametrize("case", sorted(FALSE_ALARMS))
def test_what_the_api_server_takes_as_no_change_is_not_refused(tmp_path, case):
    """Each of these was reported refused: a field at its default (from the schema) is no change,
    and an allocated clusterIP left out is kept by the registry."""
    change, base_change = FALSE_ALARMS[case]
    found = _judged(tmp_path, change, base_change)
    assert not found.get("refused") and not found.get("data-at-risk"), found


def test_revision_history_limit_is_refused_up_to_1_35_and_taken_from_1_36(tmp_path):
    change = _set(STS, "StatefulSet", ("spec", "revisionHistoryLimit"), 3)
    assert _judged(tmp_path / "a", change, versions=("1.35",)).get("refused")
    assert not _judged(tmp_path / "b", change, versions=("1.36",)).get("refused")
    (mixed,) = _judged(tmp_path / "c", change, versions=("1.35", "1.36"))["refused"]
    assert "(on Kubernetes 1.35; not on 1.36)" in mixed.expected


def test_the_init_jobs_template_is_refused_only_while_the_job_exists(tmp_path):
    """It has a TTL: after it, apply makes the Job anew. Said, as a warning, not a failure."""
    found = _judged(tmp_path, _set(JOB, "Job", C0 + ("env", 3, "value"), "9"))
    (finding,) = found["refused-in-a-state"]
    assert "field is immutable while the Job exists" in finding.expected and "600 s" in finding.expected
    assert "refused" not in found
