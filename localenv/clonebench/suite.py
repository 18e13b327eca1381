"""A whole suite's wall time: N small tests, each on its own database, run by pytest in a fresh
process at 1 and at 2 workers, with our fixture or with pytest-postgresql's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

OURS = textwrap.dedent('''
    import pytest
    from localenv.clonebench.cases import body

    @pytest.mark.parametrize("i", range({n}))
    def test_one(product_change_db, i):
        body(product_change_db.conn)
''')

THEIRS = textwrap.dedent('''
    import os
    import pytest
    from pytest_postgresql import factories
    from localenv.clonebench.suite import load_schema
    from localenv.clonebench.cases import body

    pc_noproc = factories.postgresql_noproc(host=os.environ["BENCH_HOST"], port=int(os.environ["BENCH_PORT"]),
                                            user=os.environ["BENCH_USER"], dbname="pc_bench_suite",
                                            load=[load_schema])  # the password: PGPASSFILE
    postgresql = factories.postgresql("pc_noproc")

    @pytest.mark.parametrize("i", range({n}))
    def test_one(postgresql, i):
        body(postgresql)
''')


def load_schema(host, port, user, dbname, password, **_):
    """pytest-postgresql's loader: the init Job's script on its template (run by localenv's
    machinery against the server named in the environment)."""
    from conformance import manifests, workload
    from localenv.settings import Settings
    from localenv.server import running_localenv

    import psycopg

    from localenv.clones import LOCK_KEY

    settings = Settings.resolve()
    loaded = manifests.load(settings.manifests)
    target = running_localenv(settings, loaded)
    # xdist's workers each load their own template at once; the accounts the script creates
    # are the server's, shared: one at a time, as our templates are built (the same lock, on
    # the same database: an advisory lock belongs to the database it is taken in).
    with psycopg.connect(host=host, port=port, user=user, password=password, dbname="postgres",
                         autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        proc = target.run_script(workload.schema_init(loaded), env={"PGDATABASE": dbname})
    if proc.returncode != 0:
        raise RuntimeError(f"the init script failed on {dbname}: {proc.stderr[-300:]}")


def run(kind: str, tests: int, workers: int, folder: Path, env: dict) -> tuple[float, int]:
    """Seconds for the whole pytest run (collection, server, every test, teardown), and how
    many tests passed; RuntimeError when it failed or passed fewer than `tests` (a suite of
    skips measures nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (OURS if kind == "ours" else THEIRS).replace("{n}", str(tests))
    (folder / f"test_{kind}.py").write_text(text)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"test_{kind}.py"]
    if workers > 1:
        argv += ["-n", str(workers)]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=folder, env={**os.environ, **env}, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        (folder / "failed.log").write_text(proc.stdout + proc.stderr)
        tail = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith(("E ", "FAILED", "ERROR"))]
        raise RuntimeError(f"the {kind} suite failed (its output: {folder / 'failed.log'}): {' | '.join(tail[-3:])}")
    passed = re.search(r"(\d+) passed", proc.stdout)
    if passed is None or int(passed.group(1)) != tests:
        raise RuntimeError(f"the {kind} suite passed {passed.group(1) if passed else 'no'} of {tests} tests: "
                           f"{proc.stdout.strip().splitlines()[-1:]}")
    return seconds, int(passed.group(1))
