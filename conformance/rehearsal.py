"""`conformance upgrade-rehearsal --from 14 --to N`: docs/upgrade.md's steps, run end to end on
a target, with what the cluster runs at each step: the old major from its manifests, rows
written through the service's write path, a dump by the backup CronJob's script, the new
major from upgrade/pgN/ with its schema-init Job, the dump restored by upgrade/pgN/restore/'s
Job, every live check on the new server, and every table's rows compared (count and
checksum). Each step is timed; the sum is the downtime the runbook costs (from the dump to
the end of the restore).
"""

from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conformance import manifests as manifest_loader
from conformance import targets, workload
from conformance.errors import InputError
from conformance.live.runner import apply_schema, run_live_on, target_options
from conformance.live.statements import WRITE_PATH
from conformance.pg.digest import table_digests
from conformance.plan import FIGURES, SCHEMA_TABLES, figure, targeting
from conformance.results import Result, Status

# The service's write path run this many times, each as its own request.
REQUESTS = 50
# The steps the cluster is down for: from the dump of the old database to the restored new one.
DOWNTIME_STEPS = ("dump the old database (backup CronJob's script)", "start the new major (StatefulSet)",
                  "schema-init Job on the new major", "restore the dump (restore Job)")


@dataclass
class Rehearsal:
    from_major: int
    to_major: int
    target: str
    steps: list[tuple[str, float]] = field(default_factory=list)
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_match(self) -> bool:
        return bool(self.before) and self.before == self.after

    @property
    def passed(self) -> bool:
        return self.rows_match and not any(r.status in (Status.FAILED, Status.ERROR) for r in self.results)

    @property
    def downtime(self) -> float:
        return sum(seconds for name, seconds in self.steps if name in DOWNTIME_STEPS)


def manifests_dir(root: Path, major: int) -> Path:
    """manifests/ for the plan's major, upgrade/pgN/ for a later one."""
    if major == FIGURES["pg-major"].plan:
        return root
    path = root.parent / "upgrade" / f"pg{major}"
    if not path.is_dir():
        raise InputError(f"{path}: no manifests for PostgreSQL {major} (python -m conformance upgrade-overlays)")
    return path


def _target(name: str, loaded, major: int, progress):
    chosen = None if major == FIGURES["pg-major"].plan else major
    return targets.create(name, loaded, **target_options(name, False, True, progress, pg_major=chosen))


def _write_rows(target) -> None:
    """REQUESTS requests through the service's write path, as the app account."""
    import psycopg

    with psycopg.connect(**target.conninfo("app")) as conn:
        for n in range(REQUESTS):
            for statement in WRITE_PATH:
                conn.execute(statement.replace("live-check-1", f"rehearsal-{n}"))
            conn.commit()


def _digest(target) -> dict:
    return table_digests(target.conninfo("superuser"), figure("schema").expected, SCHEMA_TABLES)


def rehearse(root: Path, from_major: int, to_major: int, target_name: str = "native", progress=None) -> Rehearsal:
    if to_major <= from_major:
        raise InputError(f"--to {to_major} is not after --from {from_major}")
    progress = progress or (lambda message: None)
    old_manifests = manifest_loader.load(manifests_dir(root, from_major))
    new_dir = manifests_dir(root, to_major)
    new_manifests = manifest_loader.load(new_dir)
    restore_job = _restore_container(new_dir, new_manifests)
    report = Rehearsal(from_major, to_major, target_name)
    reason = targets.unavailable_reason(target_name)
    if reason:
        raise InputError(f"the rehearsal cannot run on {target_name}: {reason}")

    @contextmanager
    def step(name: str):
        progress(name)
        started = time.monotonic()
        yield
        report.steps.append((name, time.monotonic() - started))

    with tempfile.TemporaryDirectory(prefix="pc-rehearsal-") as tmp:
        dumps = Path(tmp) / "backup"
        dumps.mkdir()
        dumps.chmod(0o777)  # the scripts run as the pods' uid 999, as on the backup PVC
        backup = workload.backup(old_manifests)
        backup_mount = next(m.path for m in backup.mounts() if m.source.get("persistentVolumeClaim") is not None)
        old = _target(target_name, old_manifests, from_major, progress)
        with targeting(from_major):
            try:
                with step(f"start PostgreSQL {from_major} from its manifests, schema-init Job"):
                    old.start()
                    apply_schema(old)
                with step(f"write {REQUESTS} requests through the service's write path"):
                    _write_rows(old)
                report.before = _digest(old)
                with step(DOWNTIME_STEPS[0]):
                    _check(old.run_script(backup, mounts={backup_mount: dumps}), "the backup CronJob's script")
                report.notes += old.notes
            finally:
                old.stop()  # the old StatefulSet is deleted before the new one is applied
        new = _target(target_name, new_manifests, to_major, progress)
        with targeting(to_major):
            try:
                with step(DOWNTIME_STEPS[1]):
                    new.start()
                with step(DOWNTIME_STEPS[2]):
                    apply_schema(new)
                restore_mount = next(m.path for m in restore_job.mounts()
                                     if m.source.get("persistentVolumeClaim") is not None)
                with step(DOWNTIME_STEPS[3]):
                    _check(new.run_script(restore_job, mounts={restore_mount: dumps}), "the restore Job's script")
                report.after = _digest(new)
                with step(f"every live check on PostgreSQL {to_major}"):
                    report.results = run_live_on(new, new_manifests)
                report.notes += new.notes
            finally:
                new.stop()
    return report


def _restore_container(new_dir: Path, new_manifests) -> workload.Container:
    """The restore Job's container, its Secret references resolved from the manifests (the
    Job is applied beside them, in the same namespace)."""
    loaded = manifest_loader.load(new_dir / "restore")
    job = loaded.find("Job", figure("restore-job").expected)
    if job is None:
        raise InputError(f"{new_dir / 'restore'}: no Job {figure('restore-job').expected}")
    return workload.containers(new_manifests, job)[0]


def _check(proc, what: str) -> None:
    if proc.returncode != 0:
        from conformance.errors import EnvironmentProblem

        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        raise EnvironmentProblem(f"{what} failed in the rehearsal: {tail[0] if tail else proc.returncode}")


def render(report: Rehearsal) -> str:
    lines = [f"upgrade rehearsal PostgreSQL {report.from_major} -> {report.to_major} on {report.target}"]
    for name, seconds in report.steps:
        lines.append(f"  {seconds:7.2f} s  {name}")
    lines.append(f"  downtime (dump to restored): {report.downtime:.2f} s")
    for table in SCHEMA_TABLES:
        before, after = report.before.get(table), report.after.get(table)
        verdict = "same" if before == after else "DIFFERENT"
        lines.append(f"  {table}: {before[0] if before else '-'} rows before, {after[0] if after else '-'} after, "
                     f"checksum {verdict}")
    lines += [line for r in report.results for line in r.lines()]
    lines += [f"note: {note}" for note in report.notes]
    passed = sum(r.status is Status.PASSED for r in report.results)
    skipped = sum(r.status is Status.SKIPPED for r in report.results)
    verdict = "passed" if report.passed else "FAILED"
    lines.append(f"rehearsal: {verdict}: rows {'match' if report.rows_match else 'differ'}, "
                 f"{passed} live checks passed, {skipped} skipped on PostgreSQL {report.to_major}")
    return "\n".join(lines) + "\n"
