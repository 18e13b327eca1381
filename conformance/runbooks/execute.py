"""A runbook run on the embedded or Docker target, step by step, with the runbook's own text
where the step runs in a pod: its psql SQL, the backup CronJob's and the restore Job's
scripts, the sed that reads the dump's name, the in-pod restore script. What only a cluster
has (scaling the service, suspending the CronJob, disks) is recorded as cluster-only, with
what it costs there."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from conformance import manifests as manifest_loader
from conformance import workload
from conformance.plan import figure, targeting
from conformance.results import Result
from conformance.runbooks import shell
from conformance.runbooks.model import Runbook, Step


class StepFailed(Exception):
    """A step of the runbook failed on the target: the runbook stops there, as the script does."""


@dataclass
class StepRecord:
    index: int
    title: str
    action: str
    seconds: float
    what: str  # what ran here, or what only the cluster does
    cluster_only: str | None = None


@dataclass
class Run:
    book: Runbook
    records: list[StepRecord] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)  # the runbook's $state folder
    results: list[Result] = field(default_factory=list)  # of the verify step
    failed: str | None = None  # "step N (title): why"

    @property
    def downtime(self) -> float:
        """Seconds from the step that stops the writers to the one that starts them, as run here."""
        if self.book.downtime is None:
            return 0.0
        first, last = self.book.downtime
        return sum(r.seconds for r in self.records if first <= r.index - 1 <= last)


def _variables(book: Runbook) -> dict[str, str]:
    from conformance.runbooks.shell import variables

    return {name: value for name, value, _ in variables(book.facts) + book.extra_variables}


class Executor:
    """Runs `book` starting on `target` (already up, with its schema). make_target(facts)
    makes the target for a later major's manifests (the upgrade's "apply" step)."""

    def __init__(self, book: Runbook, target, backup_dir: Path, root: Path,
                 make_target: Callable | None = None, dump_file: str | None = None,
                 hooks: dict[str, Callable[["Executor"], None]] | None = None, progress=None):
        self.book = book
        self.current = target
        self.started: list = []  # targets this run started (the caller stops them)
        self.backup_dir = backup_dir
        self.root = root
        self.make_target = make_target
        self.dump_file = dump_file
        self.hooks = hooks or {}
        self.progress = progress or (lambda message: None)
        self.run_record = Run(book)
        self.variables = _variables(book)

    @property
    def state(self) -> dict[str, str]:
        return self.run_record.state

    # -- the pieces every step uses -----------------------------------------------------------
    def psql(self, sql: str) -> str:
        """The runbook's db_psql: its psql call in the database container, SQL on stdin."""
        proc = self.current.exec_database(["sh", "-c", shell.DB_PSQL], sql.encode())
        if proc.returncode != 0:
            raise StepFailed(f"psql in the database container: {_tail(proc)}")
        return proc.stdout.decode()

    def run_job(self, container: workload.Container, env: dict | None = None) -> subprocess.CompletedProcess:
        mount = next(m.path for m in container.mounts() if m.source.get("persistentVolumeClaim") is not None)
        proc = self.current.run_script(container, env=env, mounts={mount: self.backup_dir})
        if proc.returncode != 0:
            raise StepFailed(f"{container.owner.ref} failed: {_tail(proc)}")
        return proc

    # -- the actions ----------------------------------------------------------------------------
    def _preflight(self, step: Step) -> str:
        wanted = re.search(r'runs_image "\$(\w+)"', step.commands[0])
        image = self.variables[wanted.group(1)] if wanted else self.book.facts.image
        found = workload.database(self.current.manifests).image
        if found != image:
            raise StepFailed(f"the target runs {found}, the runbook is for {image}")
        return f"the target runs {image}"

    def _stop_writers(self, step: Step) -> str:
        sessions = self.psql(shell.sessions_sql(self.book.facts.app_user)).strip()
        if sessions != "0":
            raise StepFailed(f"{sessions} sessions of {self.book.facts.app_user} are open")
        return f"no session of {self.book.facts.app_user} is open"

    def _choose_dump(self, step: Step) -> str:
        if not self.dump_file:
            raise StepFailed("no dump named (DUMP)")
        self.state["dump"] = self.dump_file
        return f"restoring {self.dump_file}"

    def _count_rows(self, step: Step) -> str:
        rows = self.psql(shell.rows_sql(self.book.facts.schema))
        self.state[step.args[0]] = "".join(sorted(rows.splitlines(keepends=True)))  # | sort
        return f"{len(self.state[step.args[0]].splitlines())} tables counted"

    def _dump(self, step: Step) -> str:
        proc = self.run_job(workload.backup(self.current.manifests))
        # The runbook's own sed reads the name from the Job's log.
        name = subprocess.run(["sed", "-n", shell.DUMP_NAME_SED], input=proc.stdout, capture_output=True,
                              text=True, check=True).stdout.strip()
        if not name or not (self.backup_dir / name).is_file():
            raise StepFailed(f"the backup Job's log names no dump that exists ({name!r})")
        self.state[step.args[0]] = name
        return f"dump {name}"

    def _remove_statefulset(self, step: Step) -> str:
        self.current.stop()
        return "server stopped, its data kept"

    def _apply(self, step: Step) -> str:
        from conformance.live.runner import apply_schema

        if self.make_target is None:
            raise StepFailed("no target for the manifests this step applies")
        target = self.make_target(self.book.facts)
        self.started.append(target)
        with targeting(self.book.facts.major):
            target.start()
            apply_schema(target)
        self.current = target
        return f"PostgreSQL {self.book.facts.major} from {self.book.facts.manifests_dir}/, schema-init Job's script"

    def _restore(self, step: Step) -> str:
        restore_manifests = manifest_loader.load(self.root / self.book.facts.restore_dir)
        job = restore_manifests.find("Job", figure("restore-job").expected)
        # The Job is applied beside the manifests: its Secret is theirs.
        container = workload.containers(self.current.manifests, job)[0]
        proc = self.run_job(container, env={"DUMP_FILE": self.state["dump"]})
        self.state["restore.log"] = proc.stdout
        last = proc.stdout.strip().splitlines()[-1:] or [""]
        return last[0]

    def _dump_rows(self, step: Step) -> str:
        # The runbook's sed and sort on the restore Job's log.
        rows = subprocess.run(["sed", "-n", shell.DUMP_ROWS_SED], input=self.state.get("restore.log", ""),
                              capture_output=True, text=True, check=True).stdout
        self.state[step.args[0]] = "".join(sorted(rows.splitlines(keepends=True)))
        if not self.state[step.args[0]]:
            raise StepFailed("no row counts in the restore Job's log")
        return f"{len(rows.splitlines())} tables in the dump"

    def _compare_rows(self, step: Step) -> str:
        before, after = (self.state[k] for k in step.args)
        if before != after:
            differ = sorted(set(before.splitlines()) ^ set(after.splitlines()))
            raise StepFailed(f"the rows differ ({step.args[0]} vs {step.args[1]}): {'; '.join(differ)}")
        return "the same in every table"

    def _verify(self, step: Step) -> str:
        from conformance.live.runner import run_live_on

        with targeting(self.book.facts.major):
            self.run_record.results = run_live_on(self.current, self.current.manifests)
        return f"{len(self.run_record.results)} live checks"

    def _cluster(self, step: Step) -> str:
        return "cluster only"

    ACTIONS = {"preflight": _preflight, "stop-writers": _stop_writers, "choose-dump": _choose_dump,
               "count-rows": _count_rows, "dump": _dump, "remove-statefulset": _remove_statefulset,
               "apply": _apply, "restore": _restore, "dump-rows": _dump_rows, "compare-rows": _compare_rows, "verify": _verify,
               "cluster": _cluster}

    def run(self) -> Run:
        """Every step in order, stopping at the first that fails."""
        for i, step in enumerate(self.book.steps, 1):
            self.progress(f"step {i}/{len(self.book.steps)}: {step.title}")
            started = time.monotonic()
            try:
                what = self.ACTIONS[step.action](self, step)
            except StepFailed as exc:
                self.run_record.records.append(StepRecord(i, step.title, step.action, time.monotonic() - started,
                                                          f"FAILED: {exc}", step.cluster_only))
                self.run_record.failed = f"step {i} ({step.title}): {exc}"
                return self.run_record
            self.run_record.records.append(StepRecord(i, step.title, step.action, time.monotonic() - started,
                                                      what, step.cluster_only))
            if step.action in self.hooks:
                self.hooks[step.action](self)
        return self.run_record

    def stop(self) -> None:
        for target in [self.current, *self.started]:
            if target is not None:
                target.stop()


def _tail(proc) -> str:
    text = proc.stderr or proc.stdout or b""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    # The error itself, not the CONTEXT or HINT lines PostgreSQL prints after it.
    errors = [line for line in lines if "ERROR:" in line or "error:" in line or "FATAL:" in line]
    return (errors or lines)[-1].strip() if lines else f"exit {proc.returncode}"


def render_run(run: Run) -> list[str]:
    """The steps as run: time, what ran, and what only the cluster does."""
    lines = []
    for r in run.records:
        where = f" [on the cluster: {r.cluster_only}]" if r.cluster_only else ""
        lines.append(f"  {r.seconds:7.2f} s  {r.index:2d}. {r.title}: {r.what}{where}")
    return lines


__all__ = ["Executor", "Run", "StepFailed", "render_run"]
