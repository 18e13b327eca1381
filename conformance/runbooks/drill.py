"""`conformance restore-drill`: the restore runbooks' database steps run on a target, the way
the runbooks write them, with the faults they must survive:

- the restore runbook (docs/runbooks/restore.md) brings back exactly a nightly dump's rows,
  after an undo dump of what was there;
- a dump cut short is refused before anything is touched (and `pg_restore --list`, which the
  old runbook trusted, is shown to accept it);
- from-v1's data-only restore replaces the init Job's seed rows with the dump's in one
  transaction, and a cut-short archive leaves the database as it was;
- node-crash's pg_amcheck step runs on a database the init Job made (and without
  --install-missing, as the old runbook had it, it is shown to fail).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from conformance import manifests as manifest_loader
from conformance import targets
from conformance.errors import InputError
from conformance.live.runner import apply_schema, target_options
from conformance.pg.digest import schema_digests
from conformance.plan import SCHEMA_TABLES, figure
from conformance.rehearsal import write_rows
from conformance.runbooks import books, shell
from conformance.runbooks.execute import Executor
from conformance.runbooks.model import Step


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    detail: str


def _cut(path: Path, into: Path) -> Path:
    """A dump without its last 5%: what a broken transfer or a full disk leaves. The cut is in
    the data blocks, after the table of contents."""
    into.write_bytes(_cut_bytes(path.read_bytes()))
    return into


def run(root: Path, target_name: str = "native", progress=None) -> list[Outcome]:
    """root: the project (manifests/, upgrade/ and sql/ below it)."""
    progress = progress or (lambda message: None)
    reason = targets.unavailable_reason(target_name)
    if reason:
        raise InputError(f"the restore drill cannot run on {target_name}: {reason}")
    book = books.restore_runbook(root, figure("pg-major").plan)
    loaded = manifest_loader.load(root / book.facts.manifests_dir)
    target = targets.create(target_name, loaded, **target_options(target_name, False, True, progress))
    outcomes: list[Outcome] = []
    schema = figure("schema").expected

    def digest() -> dict:
        return schema_digests(target.conninfo("superuser"))

    with tempfile.TemporaryDirectory(prefix="pc-restore-drill-") as tmp, target:
        dumps = Path(tmp) / "backup"
        dumps.mkdir()
        dumps.chmod(0o777)  # the Jobs run as the pods' uid 999
        apply_schema(target)
        progress("rows through the write path, then the nightly dump")
        write_rows(target, "drill-night")
        nightly = Executor(book, target, dumps, root)
        with_rows = digest()
        nightly._dump(Step("the nightly run", "", (), "dump", ("nightly",)))
        nightly_name = nightly.state["nightly"]
        write_rows(target, "drill-day")  # the day's writes after the dump

        # 1. The restore runbook, every step, DUMP=the nightly dump.
        progress("the restore runbook with the nightly dump")
        executor = Executor(book, target, dumps, root, dump_file=nightly_name, progress=progress)
        result = executor.run()
        after = digest()
        undo = executor.state.get("undo-dump")
        ok = result.failed is None and after == with_rows and undo is not None and (dumps / undo).is_file()
        outcomes.append(Outcome("restore runbook: the nightly dump's rows are back, an undo dump kept", ok,
                                result.failed or f"rows {_rows(after)} (the dump's: {_rows(with_rows)}); undo {undo}"))

        # 2. A dump cut short: refused before anything is touched.
        cut = _cut(dumps / undo, dumps / "product_change_db_cut_short.dump")
        lists = target.exec_database(["sh", "-c", "exec pg_restore --list >/dev/null"], cut.read_bytes())
        refused = Executor(book, target, dumps, root, dump_file=cut.name).run()
        unchanged = digest() == after
        outcomes.append(Outcome(
            "restore runbook: a dump cut short is refused and the database is untouched",
            refused.failed is not None and "restore" in refused.failed.lower() and unchanged,
            (refused.failed or "the cut-short dump was restored") + ("" if unchanged else "; the database CHANGED")))
        outcomes.append(Outcome(
            "the old runbook's check, pg_restore --list, accepts that cut-short dump (why it is gone)",
            lists.returncode == 0, f"pg_restore --list exit {lists.returncode} "
                                   f"{lists.stderr.decode(errors='replace').strip()[-200:]}"))

        # 3. from-v1's data-only restore, into a schema the init Job has just made (seed rows in).
        progress("from-v1's data-only restore over a fresh schema")
        full = target.exec_database(["sh", "-c", 'exec pg_dump -Fc -U "${POSTGRES_USER:-$(cat "$POSTGRES_USER_FILE")}" '
                                                 '-d "$POSTGRES_DB"'])
        if full.returncode != 0:
            raise InputError(f"pg_dump in the database container failed: {full.stderr.decode(errors='replace')}")
        _fresh_schema(target, executor, schema)
        v1 = books.from_v1_runbook(root)
        script = dict((n, v) for n, v, _ in v1.extra_variables)["v1_restore_in_pod"]
        short = target.exec_database(["bash", "-c", script], _cut_bytes(full.stdout))
        seeded = _count(executor, schema)
        outcomes.append(Outcome("from-v1: a cut-short archive rolls back, the seed rows stay", short.returncode != 0
                                and seeded == _count_after_init(target), f"exit {short.returncode}; rows {seeded.strip().replace(chr(10), ', ')}"))
        done = target.exec_database(["bash", "-c", script], full.stdout)
        restored = digest()
        outcomes.append(Outcome("from-v1: the dump's rows replace the seed rows (ids 1-3 collide otherwise)",
                                done.returncode == 0 and restored == after,
                                f"exit {done.returncode}: {done.stderr.decode(errors='replace').strip()[-200:]}"
                                if done.returncode else f"rows {_rows(restored)}"))

        # 4. node-crash's pg_amcheck step, and the old runbook's form of it.
        old = target.exec_database(["sh", "-c", shell.AMCHECK.replace("--install-missing ", "")])
        new = target.exec_database(["sh", "-c", shell.AMCHECK])
        outcomes.append(Outcome("node-crash: pg_amcheck --install-missing --heapallindexed runs and finds nothing",
                                new.returncode == 0, new.stderr.decode(errors="replace").strip()[-200:] or "clean"))
        outcomes.append(Outcome("the old runbook's pg_amcheck (no --install-missing) fails on a fresh database",
                                old.returncode != 0,
                                old.stderr.decode(errors="replace").strip().splitlines()[-1:][0]
                                if old.stderr.strip() else f"exit {old.returncode}"))
    return outcomes


def _cut_bytes(data: bytes) -> bytes:
    return data[: len(data) - max(16, len(data) // 20)]


def _rows(d: dict) -> str:
    return ", ".join(f"{t} {d[t][0]}" for t in sorted(d))


def _count(executor: Executor, schema: str) -> str:
    return executor.psql(shell.rows_sql(schema))


def _fresh_schema(target, executor: Executor, schema: str) -> None:
    """The schema as a fresh install has it: dropped, then made again by the init Job's script."""
    executor.psql(f'DROP SCHEMA "{schema}" CASCADE;')
    apply_schema(target)


def _count_after_init(target) -> str:
    """What the init Job leaves: its seed rows (plan 14.2's circuit breakers), nothing else."""
    seeded = {"pc_circuit_breaker_state": figure("breaker-rows").expected}
    return "".join(f"{figure('schema').expected}.{t}|{seeded.get(t, 0)}\n" for t in sorted(SCHEMA_TABLES))


def render(outcomes: list[Outcome], target: str) -> str:
    lines = [f"restore drill on {target}:"]
    for o in outcomes:
        lines.append(f"  {'PASS' if o.passed else 'FAIL'}  {o.name}: {o.detail}")
    failed = sum(not o.passed for o in outcomes)
    lines.append(f"restore drill: {'passed' if not failed else f'{failed} FAILED'} ({len(outcomes)} checks)")
    return "\n".join(lines) + "\n"


