"""`conformance upgrade-rehearsal --from 14 --to N`: the upgrade runbook (`python -m conformance
runbook upgrade`, docs/runbooks/) run step by step on a target: the old major from its
manifests with rows written through the service's write path, then every step of the runbook
with its own text where it runs in a pod (row counts, the backup CronJob's script and the sed
that reads the dump's name, N's schema-init Job, the restore Job with the pinned dump, the
comparison of the counts, every live check). Each table's rows are also compared by checksum.
The downtime is measured from the step that stops the writers to the one that starts them,
and what only the cluster adds is estimated with its sources (runbooks/cluster_costs.py).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from conformance import manifests as manifest_loader
from conformance import targets
from conformance.errors import InputError
from conformance.live.runner import apply_schema, target_options
from conformance.live.statements import WRITE_PATH
from conformance.pg.digest import schema_digests
from conformance.plan import FIGURES, SCHEMA_TABLES, targeting
from conformance.results import Result, Status

# The service's write path run this many times, each as its own request.
REQUESTS = 50


@dataclass
class Rehearsal:
    from_major: int
    to_major: int
    target: str
    run: object = None  # runbooks.execute.Run
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cluster_costs: list = field(default_factory=list)  # (Cost, times)

    @property
    def results(self) -> list[Result]:
        return self.run.results if self.run is not None else []

    @property
    def rows_match(self) -> bool:
        return bool(self.before) and self.before == self.after

    @property
    def passed(self) -> bool:
        return (self.run is not None and self.run.failed is None and self.rows_match
                and not any(r.status in (Status.FAILED, Status.ERROR) for r in self.results))

    @property
    def downtime(self) -> float:
        return self.run.downtime if self.run is not None else 0.0

    @property
    def cluster_range(self) -> tuple[float, float]:
        return (sum(c.low_s * n for c, n in self.cluster_costs), sum(c.high_s * n for c, n in self.cluster_costs))


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


def write_rows(target, prefix: str = "rehearsal") -> None:
    """REQUESTS requests through the service's write path, as the app account."""
    import psycopg

    with psycopg.connect(**target.conninfo("app")) as conn:
        for n in range(REQUESTS):
            for statement in WRITE_PATH:
                conn.execute(statement.replace("live-check-1", f"{prefix}-{n}"))
            conn.commit()


def _digest(target) -> dict:
    return schema_digests(target.conninfo("superuser"))


def rehearse(root: Path, from_major: int, to_major: int, target_name: str = "native", progress=None,
             hooks: dict[str, Callable] | None = None) -> Rehearsal:
    """root: the manifests/ folder of the project. hooks: action -> called with the executor
    after that step (the tests put the nightly backup or a wrong dump there)."""
    from conformance.runbooks import books, cluster_costs
    from conformance.runbooks.execute import Executor

    if to_major <= from_major:
        raise InputError(f"--to {to_major} is not after --from {from_major}")
    progress = progress or (lambda message: None)
    project = root.parent
    book = books.upgrade_runbook(project, to_major, from_major) if root.name == "manifests" else None
    if book is None:
        raise InputError(f"{root}: the rehearsal runs a project's manifests/ folder")
    old_manifests = manifest_loader.load(manifests_dir(root, from_major))
    new_manifests = manifest_loader.load(manifests_dir(root, to_major))
    report = Rehearsal(from_major, to_major, target_name)
    reason = targets.unavailable_reason(target_name)
    if reason:
        raise InputError(f"the rehearsal cannot run on {target_name}: {reason}")
    with tempfile.TemporaryDirectory(prefix="pc-rehearsal-") as tmp:
        dumps = Path(tmp) / "backup"
        dumps.mkdir()
        dumps.chmod(0o777)  # the scripts run as the pods' uid 999, as on the backup PVC
        old = _target(target_name, old_manifests, from_major, progress)
        executor = Executor(book, old, dumps, project, hooks=hooks, progress=progress,
                            make_target=lambda facts: _target(target_name, new_manifests, to_major, progress))
        try:
            with targeting(from_major):
                progress(f"start PostgreSQL {from_major} from its manifests, schema-init Job")
                old.start()
                apply_schema(old)
                progress(f"write {REQUESTS} requests through the service's write path")
                write_rows(old)
                report.before = _digest(old)
                report.notes += old.notes
            report.run = executor.run()
            if executor.current is not None and executor.current is not old:
                with targeting(to_major):
                    report.after = _digest(executor.current)
                report.notes += executor.current.notes
        finally:
            executor.stop()
    facts = book.facts
    report.cluster_costs = cluster_costs.estimate([s.action for s in book.steps], facts.grace_seconds)
    return report


def render(report: Rehearsal) -> str:
    from conformance.runbooks.execute import render_run

    lines = [f"upgrade rehearsal PostgreSQL {report.from_major} -> {report.to_major} on {report.target}, "
             f"the runbook's steps as run:"]
    if report.run is not None:
        lines += render_run(report.run)
    lines.append(f"  downtime as rehearsed (writers stopped to started): {report.downtime:.2f} s")
    if report.cluster_costs:
        low, high = report.cluster_range
        lines.append(f"  on the cluster add {low:.0f}-{high:.0f} s (estimates, not measured here):")
        for cost, times in report.cluster_costs:
            lines.append(f"    {times} x {cost.what}: {cost.low_s:.0f}-{cost.high_s:.0f} s ({cost.source})")
        lines.append("    and the service's own stop and start")
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
    stopped = f"; stopped at {report.run.failed}" if report.run is not None and report.run.failed else ""
    lines.append(f"rehearsal: {verdict}: rows {'match' if report.rows_match else 'differ'}, "
                 f"{passed} live checks passed, {skipped} skipped on PostgreSQL {report.to_major}{stopped}")
    return "\n".join(lines) + "\n"
