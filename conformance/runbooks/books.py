"""The runbooks, each a function of the manifests it acts on. Every name, path, image and claim
comes from conformance.runbooks.facts; the shell helpers they call are in shell.py."""

from __future__ import annotations

import shlex
from pathlib import Path

from conformance.errors import InputError
from conformance.plan import FIGURES, MAJOR_IMAGE_TAGS
from conformance.runbooks import facts as facts_module
from conformance.runbooks.facts import Facts
from conformance.runbooks.model import BOOKS, Runbook, Step
from conformance.runbooks.shell import AMCHECK, DUMP_NAME_SED, DUMP_ROWS_SED, data_only_restore_script

PLAN_MAJOR = FIGURES["pg-major"].plan
CONFORMANCE = ".venv/bin/python -m conformance"
WRITERS_TIMEOUT = 300  # seconds for the service's sessions to end once it is scaled to 0
# Beyond a Job's activeDeadlineSeconds (after which it has failed) and the startupProbe's window:
# the API server's own delay in saying so, the pod's scheduling and image pull.
WAIT_MARGIN = 60
ROLLOUT_MARGIN = 300


def gone_seconds(f: Facts) -> int:
    """How long to wait for the database pod to be gone: its clean shutdown, then the margin."""
    return f.grace_seconds + WAIT_MARGIN


def rollout(f: Facts) -> str:
    return f'kubectl -n "$ns" rollout status "statefulset/$statefulset" --timeout={f.startup_seconds + ROLLOUT_MARGIN}s'


# -- steps shared by the runbooks -----------------------------------------------------------
def preflight(f: Facts, image_var: str = "image", extra: tuple[str, ...] = ()) -> Step:
    return Step(
        "Check what runs", "The runbook stops here, before it changes anything, when the cluster runs another "
        "image than the one it was written for (print it again for that major).",
        (f'runs_image "${image_var}"', *extra, 'mkdir -p "$state"'), "preflight")


def stop_writers() -> Step:
    return Step(
        "Stop the writers (the downtime starts)",
        "The service is scaled to 0 and the step waits until its account has no session left, so nothing writes "
        "after the rows are counted. `WRITERS` names the service's workload (`WRITERS=none` when it is not "
        "deployed); its replica count is kept for the last step.",
        ('if [ "$writers" != none ]; then',
         '  kubectl -n "$ns" get "$writers" -o jsonpath=\'{.spec.replicas}\' > "$state/writers-replicas"',
         '  kubectl -n "$ns" scale "$writers" --replicas=0',
         'fi',
         f"writers_gone {WRITERS_TIMEOUT}"),
        "stop-writers", cluster_only="the service's pods stop (their termination grace period)")


def start_writers() -> Step:
    return Step(
        "Start the writers again (the downtime ends)", "The service gets back the replicas it had.",
        ('if [ "$writers" != none ]; then',
         '  kubectl -n "$ns" scale "$writers" --replicas="$(cat "$state/writers-replicas")"',
         'fi'),
        "cluster", cluster_only="the service's pods start and connect")


def suspend_backups(f: Facts) -> Step:
    return Step(
        "Suspend the backup CronJob",
        "Its nightly run (with its starting deadline) must not dump a database that is half-way through this "
        "runbook, nor race it for the backup disk. `kubectl apply` leaves `suspend` as it finds it; the last step "
        "resumes it, and the alarm on a day without a successful backup fires if that is forgotten.",
        ('kubectl -n "$ns" patch cronjob "$backup_cronjob" --type=merge -p \'{"spec":{"suspend":true}}\'',
         f"backups_idle {f.deadlines['dump'] + WAIT_MARGIN}"),
        "cluster")


def resume_backups() -> Step:
    return Step(
        "Resume the backup CronJob", "Nightly dumps again.",
        ('kubectl -n "$ns" patch cronjob "$backup_cronjob" --type=merge -p \'{"spec":{"suspend":false}}\'',),
        "cluster")


def count_rows(into: str, when: str) -> Step:
    return Step(
        f"Count the rows {when}", "Every table of the schema and its exact row count, kept in the state folder.",
        (f'db_rows | sort > "$state/{into}"', f'cat "$state/{into}"'),
        "count-rows", (into,))


def dump(f: Facts, job: str, why: str, into: str = "dump") -> Step:
    return Step(
        "Dump the database with the backup CronJob's script", why +
        " The Job is made anew from the CronJob (a finished Job of that name is deleted first), and the dump's "
        "file name is read from its log and kept: later steps restore exactly that file, never the newest.",
        (f'kubectl -n "$ns" delete job {job} --ignore-not-found --wait',
         f'kubectl -n "$ns" create job {job} --from="cronjob/$backup_cronjob"',
         f"job_wait {job} {f.deadlines['dump'] + WAIT_MARGIN}",
         f'kubectl -n "$ns" logs job/{job} | sed -n \'{DUMP_NAME_SED}\' > "$state/{into}"',
         f'[ -s "$state/{into}" ] || fail "no dump named in the log of job/{job}"',
         f'echo "dump: $(cat "$state/{into}")"'),
        "dump", (into,), cluster_only="the backup disk attaches to the Job's node (ReadWriteOnce)")


def remove_statefulset(f: Facts, what: str) -> Step:
    wait = gone_seconds(f)
    return Step(
        f"Remove the StatefulSet of {what}",
        "Its claims stay (persistentVolumeClaimRetentionPolicy: Retain): the data disk is kept for a rollback. "
        f"The pod gets {f.grace_seconds} s for a clean shutdown; the step waits until it is gone, so the disk is "
        "free for whatever mounts it next. The schema-init Job goes too: a Job's template cannot change, and "
        "`kubectl apply` of another major's Job would be refused while the old one exists.",
        ('kubectl -n "$ns" delete statefulset "$statefulset" --wait',
         f'kubectl -n "$ns" wait --for=delete "pod/$pod" --timeout={wait}s',
         'kubectl -n "$ns" delete job "$schema_job" --ignore-not-found --wait'),
        "remove-statefulset", confirm=f"delete statefulset {f.statefulset} ({what}; its disk stays)",
        cluster_only=f"the pod's shutdown (at most terminationGracePeriodSeconds, {f.grace_seconds} s) and the "
                     "data disk's detach")


def apply_manifests(f: Facts, backups_suspended: bool = True) -> Step:
    suspend = ('kubectl -n "$ns" patch cronjob "$backup_cronjob" --type=merge -p \'{"spec":{"suspend":true}}\'',)
    return Step(
        f"Apply {f.manifests_dir}/ and wait for the server and its schema-init Job",
        "The schema-init Job is deleted first whatever its state, so that it runs again (a finished Job applied "
        "again is `unchanged`; one of another image is refused)."
        + (" The backup CronJob is suspended again in case the apply un-suspended it." if backups_suspended else ""),
        ('kubectl -n "$ns" delete job "$schema_job" --ignore-not-found --wait',
         f"kubectl apply -k {f.manifests_dir}/",
         *(suspend if backups_suspended else ()),
         rollout(f),
         'runs_image "$image"',
         f'job_wait "$schema_job" {f.deadlines["schema"] + WAIT_MARGIN}'),
        "apply", cluster_only="scheduling, a new disk's provisioning and attach, the image pull")


def restore(f: Facts) -> Step:
    return Step(
        "Restore the dump named in the state folder",
        f"The restore Job ({f.restore_dir}/, {f.image}'s client) restores the file the ConfigMap "
        f"`{f.restore_request}` names: it reads the whole archive first (a dump cut short fails before anything "
        "is touched), then cleans and restores in one transaction that commits only when every table holds the "
        "dump's rows. The Job is deleted before it is applied, so the step can be run again; the ConfigMap is "
        "deleted after, so that a stray apply of the Job restores nothing.",
        ('kubectl -n "$ns" delete configmap "$restore_request" --ignore-not-found',
         'kubectl -n "$ns" create configmap "$restore_request" --from-literal=dump-file="$(cat "$state/dump")"',
         'kubectl -n "$ns" delete job "$restore_job" --ignore-not-found --wait',
         f"kubectl apply -k {f.restore_dir}/",
         f'job_wait "$restore_job" {f.deadlines["restore"] + WAIT_MARGIN}',
         'kubectl -n "$ns" logs "job/$restore_job"',
         'kubectl -n "$ns" delete configmap "$restore_request"'),
        "restore", confirm=f"restore the dump over {f.database} (every table is replaced)",
        cluster_only="the backup disk detaches from the dump's node and attaches to the restore Job's")


def dump_rows(into: str) -> Step:
    return Step(
        "Take the dump's row counts from the restore Job's log",
        "The Job counted every table's rows in the dump before restoring it; the next step compares them with "
        "the database's.",
        (f'kubectl -n "$ns" logs "job/$restore_job" | sed -n \'{DUMP_ROWS_SED}\' | sort > "$state/{into}"',
         f'[ -s "$state/{into}" ] || fail "no row counts in the log of job/$restore_job"'),
        "dump-rows", (into,))


def compare_rows(before: str, after: str, otherwise: str) -> Step:
    return Step(
        "Compare the rows", f"Table by table, exactly. A difference means the wrong dump or a lost row: {otherwise}",
        (f'diff "$state/{before}" "$state/{after}" || fail "the rows differ ({before} vs {after}): {otherwise}"',
         'echo "rows: the same in every table"'),
        "compare-rows", (before, after))


def verify(f: Facts) -> Step:
    return Step(
        f"Check the running server against {f.manifests_dir}/",
        "Every live check of the conformance suite that reads, on the manifests of this major (read-only: it "
        "writes nothing without --allow-writes).",
        (f"{CONFORMANCE} run --target cluster --manifests {f.manifests_dir} --pg-major {f.major}",),
        "verify")


# -- the runbooks ---------------------------------------------------------------------------
def _facts(root: Path, major: int) -> Facts:
    if major not in MAJOR_IMAGE_TAGS:
        raise InputError(f"PostgreSQL {major}: no manifests (majors {min(MAJOR_IMAGE_TAGS)}-{max(MAJOR_IMAGE_TAGS)})")
    return facts_module.read(root, major)


def restore_runbook(root: Path, major: int, dump_file: str | None = None) -> Runbook:
    f = _facts(root, major)
    choose = Step(
        "Name the dump to restore",
        "The backup Jobs' logs name the dumps they wrote (the last few Jobs are kept); dumps are kept "
        f"{FIGURES['backup-retention-days'].expected} days. Set `DUMP` to the file name.",
        ('kubectl -n "$ns" logs -l "job-type=backup" --prefix --tail=-1 | grep "Backup completed" || true',
         'printf \'%s\\n\' "${DUMP:?set DUMP to the file name of the dump to restore}" > "$state/dump"',
         'echo "restoring: $(cat "$state/dump")"'),
        "choose-dump")
    steps = [preflight(f), choose, stop_writers(), suspend_backups(f), count_rows("rows-before.txt", "before"),
             dump(f, "pre-restore", "First a dump of the database as it is now, so that this restore can be undone.",
                  into="undo-dump"),
             restore(f), dump_rows("rows-in-dump.txt"), count_rows("rows-after.txt", "after the restore"),
             compare_rows("rows-in-dump.txt", "rows-after.txt",
                          "do not start the writers; the undo dump puts back what was there"),
             resume_backups(), start_writers()]
    return Runbook(
        "restore", f"Restore a dump into the running database (PostgreSQL {major})",
        "Puts the database back to what a backup holds. Writes made since that dump are lost, so the runbook "
        "first stops the writers and dumps the database as it is (the undo), then restores the named dump in one "
        "transaction: it is all or nothing, and a dump cut short is refused before anything is touched.",
        f, steps, f"{CONFORMANCE} runbook restore --pg-major {major}",
        extra_variables=[("DUMP", dump_file or "", "the dump to restore (a file name the backup Job logged)")]
        if dump_file else [],
        downtime=(2, len(steps) - 1),
        after="The undo is the `pre-restore` dump named in `$state/undo-dump`: restore it with this runbook.")


def upgrade_runbook(root: Path, to_major: int, from_major: int = PLAN_MAJOR) -> Runbook:
    if to_major <= from_major:
        raise InputError(f"--to {to_major} is not after PostgreSQL {from_major}")
    old, new = _facts(root, from_major), _facts(root, to_major)
    steps = [
        preflight(old, "old_image", (f"{CONFORMANCE} check --manifests {new.manifests_dir} --pg-major {new.major}",)),
        stop_writers(), suspend_backups(old), count_rows("rows-before.txt", f"on PostgreSQL {from_major}"),
        dump(old, "pre-upgrade", "The last word of the old database: nothing writes any more."),
        remove_statefulset(old, f"PostgreSQL {from_major}"),
        apply_manifests(new),
        restore(new),
        count_rows("rows-after.txt", f"on PostgreSQL {to_major}"),
        compare_rows("rows-before.txt", "rows-after.txt",
                     "do not start the writers; restore the right dump (run the restore step again) or roll back"),
        verify(new), resume_backups(), start_writers()]
    return Runbook(
        "upgrade", f"Move the dev database from PostgreSQL {from_major} to {to_major}",
        f"Dump and restore onto {to_major}'s own disk: the {from_major} disk (`{old.data_claim}`) stays as the dump "
        "left it, for a rollback. The downtime runs from stopping the writers to starting them again.",
        new, steps, f"{CONFORMANCE} runbook upgrade --from {from_major} --to {to_major}",
        extra_variables=[("old_image", old.image, f"what {old.manifests_dir}/ runs"),
                         ("old_claim", old.data_claim, f"PostgreSQL {from_major}'s disk, kept for a rollback")],
        downtime=(1, len(steps) - 1),
        after=f"Keep `{old.data_claim}` until PostgreSQL {to_major} has run long enough; then "
              f"`{CONFORMANCE} runbook retire-claim --pg-major {from_major}` deletes it, its volume and its disk. "
              f"Until then `{CONFORMANCE} runbook rollback --from {to_major} --to {from_major}` goes back.")


def rollback_runbook(root: Path, from_major: int, to_major: int = PLAN_MAJOR) -> Runbook:
    if to_major >= from_major:
        raise InputError(f"a rollback goes to an earlier major: --to {to_major} is not before --from {from_major}")
    new, old = _facts(root, from_major), _facts(root, to_major)
    steps = [
        preflight(new, "new_image"), stop_writers(), suspend_backups(new),
        dump(new, "pre-rollback", f"What PostgreSQL {from_major} holds now, for the record: the rollback returns to "
                             f"the {to_major} disk as the upgrade's dump left it, and writes made since are not on it."),
        remove_statefulset(new, f"PostgreSQL {from_major}"),
        apply_manifests(old), verify(old), resume_backups(), start_writers()]
    return Runbook(
        "rollback", f"Go back from PostgreSQL {from_major} to {to_major}",
        f"The StatefulSet of {to_major} finds its old claim `{old.data_claim}` with the data as the upgrade's dump "
        f"left it. Writes made on {from_major} are not there: the `pre-rollback` dump keeps them ({from_major}'s "
        f"format, which {to_major}'s pg_restore cannot read).",
        old, steps, f"{CONFORMANCE} runbook rollback --from {from_major} --to {to_major}",
        extra_variables=[("new_image", new.image, f"what {new.manifests_dir}/ runs")],
        downtime=(1, len(steps) - 1))


def retire_claim_runbook(root: Path, major: int) -> Runbook:
    f = _facts(root, major)
    steps = [
        Step("Check that the claim is no longer in use",
             "The StatefulSet must run another major's claim: a claim still mounted is not retired.",
             (f'runs_other_image "{f.image}"',
              'mkdir -p "$state"',
              'kubectl -n "$ns" get pvc "$data_claim" -o jsonpath=\'{.spec.volumeName}\' > "$state/volume"',
              'kubectl get pv "$(cat "$state/volume")" -o jsonpath=\'{.spec.csi.volumeHandle}\' > "$state/disk"',
              'echo "claim $data_claim: volume $(cat "$state/volume"), disk $(cat "$state/disk")"'),
             "cluster"),
        Step("Delete the claim, its volume and its disk",
             "The StorageClass retains released volumes: deleting the claim alone leaves a Released volume and the "
             "billed disk behind.",
             ('kubectl -n "$ns" delete pvc "$data_claim" --wait',
              'kubectl delete pv "$(cat "$state/volume")" --wait',
              'az disk delete --yes --ids "$(cat "$state/disk")"'),
             "cluster", confirm=f"delete {f.data_claim} and its disk for good (PostgreSQL {major}'s data)")]
    return Runbook("retire-claim", f"Delete PostgreSQL {major}'s kept disk",
                   f"After an upgrade, once the new major has run long enough: {f.data_claim}, its volume and "
                   "its Azure disk go. There is no way back afterwards.",
                   f, steps, f"{CONFORMANCE} runbook retire-claim --pg-major {major}")


def node_crash_runbook(root: Path, major: int) -> Runbook:
    f = _facts(root, major)
    pod = f"{f.statefulset}-pid-cleanup"
    steps = [
        preflight(f),
        Step("See why the server does not start",
             "The last lines of the database container's previous run, and what the init containers said (the "
             "stale-lock cleanup says whether it removed or kept `postmaster.pid`, and why).",
             ('kubectl -n "$ns" get pod "$pod" -o wide || true',
              *(f'kubectl -n "$ns" logs "$pod" -c {shlex.quote(name)} --tail=20 || true' for name in f.init_containers),
              'kubectl -n "$ns" logs "$pod" -c "$container" --previous --tail=20 || true'),
             "cluster"),
        Step("Stop the StatefulSet and wait for its pod to go",
             "Nothing may run on the data directory while it is repaired; the disk (ReadWriteOnce) must be free "
             "before another pod can mount it (else: Multi-Attach error).",
             ('kubectl -n "$ns" scale statefulset "$statefulset" --replicas=0',
              f'kubectl -n "$ns" wait --for=delete "pod/$pod" --timeout={gone_seconds(f)}s'),
             "cluster", confirm=f"stop {f.statefulset} (the database is down until the last step)"),
        Step("Remove the stale postmaster.pid with a one-off pod",
             "A pod with the StatefulSet's own image, user and security context mounts the data claim and removes "
             "`postmaster.pid` (no server runs: the StatefulSet is at 0). The StatefulSet is scaled back only "
             "when this succeeded.",
             ('kubectl -n "$ns" delete pod ' + pod + ' --ignore-not-found --wait',
              "kubectl apply -f - <<EOF\n" + _cleanup_pod(f, pod) + "EOF",
              f"pod_wait {pod} 600",
              f'kubectl -n "$ns" delete pod {pod} --wait'),
             "cluster", cluster_only="the one-off pod's image pull and the disk's attach and detach"),
        Step("Start the StatefulSet again",
             f"Crash recovery runs; the startupProbe allows it up to {f.startup_seconds} s.",
             ('kubectl -n "$ns" scale statefulset "$statefulset" --replicas=1',
              rollout(f)),
             "cluster"),
        Step("Check tables and indexes for damage",
             "pg_amcheck over the database, heap and every index entry (`--install-missing` adds the amcheck "
             "extension where it is not yet). Damage found: restore the last dump (the restore runbook).",
             (f'kubectl -n "$ns" exec "$pod" -c "$container" -- sh -c {shlex.quote(AMCHECK)}',),
             "amcheck")]
    return Runbook("node-crash", f"After a node crash: the server does not start (PostgreSQL {major})",
                   "A node that loses power can leave an empty `postmaster.pid` (likely with plan 12.1's fsync=off, "
                   "which the manifests do not ship), or one "
                   "naming a PID another process holds, and PostgreSQL then refuses to start (`FATAL: lock file "
                   "\"postmaster.pid\" is empty`, or `... already exists`). The StatefulSet's init container "
                   "removes such a file in every new pod, so the pod comes back by itself (docs/deviations.md). "
                   "This runbook is the fallback when it still does not: the init container failed, or kept a "
                   "file whose PID runs a server of this data directory (never expected with one pod; see the "
                   "deviation's conditions). If the log says `PANIC: could not locate a valid checkpoint record` "
                   "(or another PANIC), the data directory itself is damaged (with plan 12.1's fsync=off: 2 in 30 "
                   "power cuts in the drills; docs/deviations.md): this runbook cannot help; the retire-claim runbook gives the pod a new disk and the "
                   "restore runbook brings back the last dump.",
                   f, steps, f"{CONFORMANCE} runbook node-crash --pg-major {major}")


def _cleanup_pod(f: Facts, name: str) -> str:
    """A pod with the StatefulSet's own image and security contexts (read from the manifests, so
    that it owns the disk as the server does) that removes postmaster.pid from the data claim."""
    import yaml

    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": f.namespace,
                     "labels": {"app": f.statefulset, "job-type": "maintenance"}},
        "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": False,
            "securityContext": f.pod_security,
            "containers": [{"name": "cleanup", "image": f.image,
                            "command": ["rm", "-v", "--", f"{f.pgdata}/postmaster.pid"],
                            "securityContext": f.container_security,
                            "volumeMounts": [{"name": "data", "mountPath": f.data_mount}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f.data_claim}}]}}
    return yaml.safe_dump(pod, sort_keys=False)


def snapshot_runbook(root: Path, major: int) -> Runbook:
    f = _facts(root, major)
    steps = [
        preflight(f),
        Step("Stop the server", "A snapshot of a running server's disk is only as good as a power cut: crash "
             "recovery repairs it, but the commits synchronous_commit=off had not flushed are not in it (and "
             "with plan 12.1's fsync and full_page_writes off, which the manifests do not ship, torn pages no "
             "recovery repairs could be). Stopped, the disk holds a clean shutdown with every commit.",
             ('kubectl -n "$ns" scale statefulset "$statefulset" --replicas=0',
              f'kubectl -n "$ns" wait --for=delete "pod/$pod" --timeout={gone_seconds(f)}s'),
             "cluster", confirm=f"stop {f.statefulset} for the snapshot (a few minutes' downtime)"),
        Step("Snapshot the data disk", "The disk behind the data claim, found through its volume.",
             ('disk=$(kubectl get pv "$(kubectl -n "$ns" get pvc "$data_claim" -o jsonpath=\'{.spec.volumeName}\')" '
              '-o jsonpath=\'{.spec.csi.volumeHandle}\')',
              f'az snapshot create -g {f.resource_group} -n "pc-db-pg{major}-$(date -u +%Y%m%d%H%M)" --source "$disk"'),
             "cluster"),
        Step("Start the server again", "",
             ('kubectl -n "$ns" scale statefulset "$statefulset" --replicas=1',
              rollout(f)),
             "cluster")]
    return Runbook("snapshot", f"A manual disk snapshot of a stopped server (PostgreSQL {major})",
                   "Plan 7.1's manual snapshot: the server is stopped first, so the disk holds a clean shutdown.",
                   f, steps, f"{CONFORMANCE} runbook snapshot --pg-major {major}", downtime=(1, 3))


def from_v1_runbook(root: Path) -> Runbook:
    """From the plan's v1.0 manifests (bitnami's image, the app account as the superuser) to ours."""
    f = _facts(root, PLAN_MAJOR)
    plan_image = FIGURES["image"].plan
    # In v1.0 the app account is the bootstrap superuser, reached over the pod's loopback.
    as_v1 = 'PGPASSWORD="$POSTGRES_PASSWORD" exec {} -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'
    v1_dump = f'kubectl -n "$ns" exec "$pod" -- sh -c \'{as_v1.format("pg_dump -Fc")}\' > "$state/v1.dump"'
    v1_rows = (f'printf \'%s\' "$rows_sql" | kubectl -n "$ns" exec -i "$pod" -- sh -c '
               f'\'{as_v1.format("psql -X -q -A -t -v ON_ERROR_STOP=1 -f -")}\' > "$state/rows-before.txt"')
    steps = [
        preflight(f, "v1_image"), stop_writers(), suspend_backups(f),
        Step("Count the rows of the v1.0 database", "In v1.0 the app account is the bootstrap superuser, "
             "reached over the pod's loopback with its password.",
             (v1_rows,
              'cat "$state/rows-before.txt"'),
             "cluster"),
        Step("Dump it to this machine and read the dump to its end",
             "`pg_restore --list` reads only the table of contents: a dump cut short in transfer passes it. The "
             "dump is read whole instead, by the pod's own pg_restore, from the file this machine received.",
             (v1_dump,
              'kubectl -n "$ns" exec -i "$pod" -- pg_restore --file=/dev/null < "$state/v1.dump"',
              'ls -l "$state/v1.dump"'),
             "cluster"),
        Step("Replace the objects the API server will not change in place",
             "The shared objects first; then the Job and the StatefulSet (its pod and claim stay: --cascade=orphan).",
             ("kubectl apply -k manifests/shared/",
              'kubectl -n "$ns" delete job "$schema_job" --ignore-not-found --wait',
              'kubectl -n "$ns" delete statefulset "$statefulset" --cascade=orphan --wait'),
             "cluster", confirm="replace the v1.0 StatefulSet and Job (the data moves by the dump)"),
        apply_manifests(f),
        Step("Put the v1.0 rows into the schema the Job made",
             "In one transaction: the Job's seed rows go (the circuit-breaker rows 1-3 would collide with v1.0's), "
             "the dump's rows and sequence positions come in, and COMMIT is the last line, so a failure or a "
             "stream cut short rolls it all back.",
             ('kubectl -n "$ns" exec -i "$pod" -c "$container" -- bash -c "$v1_restore_in_pod" < "$state/v1.dump"',),
             "v1-restore"),
        count_rows("rows-after.txt", "after the restore"),
        compare_rows("rows-before.txt", "rows-after.txt", "do not start the writers; find the table that differs"),
        verify(f), resume_backups(), start_writers()]
    return Runbook(
        "from-v1", "From the plan's v1.0 manifests to ours (PostgreSQL 14)",
        "The plan's v1.0 keeps its data in bitnami's layout (`/bitnami/postgresql/data`), which the official "
        "image does not read: the data moves by a dump, not in place. The disk stays the same; the old files "
        "stay beside the new ones until you remove them.",
        f, steps, f"{CONFORMANCE} runbook from-v1",
        extra_variables=[("v1_image", plan_image, "what the plan's v1.0 manifests run"),
                         ("v1_restore_in_pod", data_only_restore_script(f.schema), "the data-only restore, run in the pod")],
        downtime=(1, len(steps) - 1),
        after="The v1.0 files stay on the disk beside the new data directory until you remove them: "
              f"`kubectl -n {f.namespace} exec {f.pod} -c {f.container} -- rm -rf {f.data_mount}/data`.")


def apply_runbook(root: Path, major: int) -> Runbook:
    f = _facts(root, major)
    steps = [
        Step("The objects other services share",
             "The namespace and the StorageClass, applied on their own (`kubectl delete -k` of the database's "
             "folder never removes them).",
             ("kubectl apply -k manifests/shared/",), "cluster"),
        Step("What this apply does to the running database",
             "`DEPLOYED` names what the cluster runs now (a commit, tag or folder; `none` on a first install): "
             "the gate then also says which changes the API server refuses, which put data at risk and which "
             "restart the pod.",
             ('deployed="${DEPLOYED:?set DEPLOYED to the commit, tag or folder the cluster runs now, or none}"',
              'if [ "$deployed" = none ]; then',
              f"  {CONFORMANCE} check --manifests {f.manifests_dir} --pg-major {f.major}",
              "else",
              f'  {CONFORMANCE} check --manifests {f.manifests_dir} --pg-major {f.major} --base "$deployed"',
              "fi"),
             "cluster"),
        apply_manifests(f, backups_suspended=False), verify(f)]
    return Runbook("apply", f"Apply the manifests (PostgreSQL {major})",
                   f"Install or update the dev database from {f.manifests_dir}/: the schema-init Job runs again "
                   "every time (its SQL converges), so a schema change reaches the running database.",
                   f, steps, f"{CONFORMANCE} runbook apply --pg-major {major}")


def build(name: str, root: Path, major: int | None = None, to_major: int | None = None,
          from_major: int | None = None, dump_file: str | None = None) -> Runbook:
    if name == "apply":
        return apply_runbook(root, major or PLAN_MAJOR)
    if name == "restore":
        return restore_runbook(root, major or PLAN_MAJOR, dump_file)
    if name == "upgrade":
        if to_major is None:
            raise InputError("runbook upgrade needs --to N (the major to move to)")
        return upgrade_runbook(root, to_major, from_major or PLAN_MAJOR)
    if name == "rollback":
        if from_major is None:
            raise InputError("runbook rollback needs --from N (the major running now)")
        return rollback_runbook(root, from_major, to_major or PLAN_MAJOR)
    if name == "retire-claim":
        return retire_claim_runbook(root, major or PLAN_MAJOR)
    if name == "node-crash":
        return node_crash_runbook(root, major or PLAN_MAJOR)
    if name == "snapshot":
        return snapshot_runbook(root, major or PLAN_MAJOR)
    if name == "from-v1":
        return from_v1_runbook(root)
    raise InputError(f"no runbook {name!r}; one of {', '.join(BOOKS)}")
