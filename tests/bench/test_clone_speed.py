"""Per-test time to get a ready database, four ways side by side on one server (issue 25), and
a suite's wall time at 1 and 2 workers; measured by pytest-benchmark (`nox -s clones-bench`),
reported by `python -m localenv.clonebench.report`, never asserted against the clock.

CLONEBENCH_TESTS sets the number of tests per way (default 200)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from localenv.clonebench import cases, suite

TESTS = int(os.environ.get("CLONEBENCH_TESTS", "200"))


@pytest.fixture(scope="module")
def laptop():
    """localenv's own server in a home of this run, what a developer's tests find; in memory
    where the plugin's throwaway server would be (its files are copied for every clone, and
    this machine's disk makes files slowly: see the report)."""
    from localenv.server import memory_scratch
    from tests.laptop import new_localenv, remove_localenv

    env = new_localenv(memory_scratch())
    try:
        env.run("up")
        yield env
    finally:
        remove_localenv(env)


@pytest.fixture(scope="module")
def target(laptop):
    from conformance import manifests
    from localenv.server import running_localenv
    from localenv.settings import Settings

    settings = Settings.resolve(home=laptop.home, port=laptop.port)
    return running_localenv(settings, manifests.load(settings.manifests))


def _measure(benchmark, way) -> None:
    held: list = []

    def between():
        if held:  # the previous test: its body, then its teardown (neither timed)
            taken = held.pop()
            cases.body(taken.conn)
            way.give_back(taken)
        return (), {}

    databases: set[str] = set()

    def take():
        taken = way.take()
        held.append(taken)
        databases.add(taken.conn.info.dbname)

    try:
        benchmark.extra_info.update(way=way.label, body=cases.BODY)
        benchmark.pedantic(take, setup=between, rounds=TESTS, iterations=1, warmup_rounds=0)
        benchmark.extra_info["times_s"] = list(benchmark.stats.stats.data)
        # Every test had a database of its own (a fresh server names its one database alike).
        assert len(benchmark.extra_info["times_s"]) == TESTS
        assert len(databases) == (1 if way.name == "initdb" else TESTS)
    finally:
        if held:
            way.give_back(held.pop())
        way.close()


@pytest.mark.live
@pytest.mark.benchmark(group="per-test")
@pytest.mark.parametrize("way", [c.name for c in cases.CASES])
def test_time_to_a_ready_database(benchmark, target, way):
    if way == "pytest-postgresql":
        pytest.importorskip("pytest_postgresql", reason="nox -s clones-bench installs pytest-postgresql 10")
    kind = next(c for c in cases.CASES if c.name == way)
    made = kind(target)
    if way == "pool":
        benchmark.extra_info["pool"] = made.dbs.pool.size
    _measure(benchmark, made)


@pytest.mark.live
@pytest.mark.benchmark(group="suite")
@pytest.mark.parametrize("kind", ["ours", "pytest-postgresql"])
@pytest.mark.parametrize("workers", [1, 2])
def test_suite_wall_time(benchmark, laptop, target, kind, workers):
    if kind == "pytest-postgresql":
        pytest.importorskip("pytest_postgresql", reason="nox -s clones-bench installs pytest-postgresql 10")
    from localenv.connection import pgpass_line

    info = target.conninfo("superuser")
    folder = Path(tempfile.mkdtemp(prefix="pc-clonebench-"))
    # The superuser's password reaches the suite through a pgpass of this run (localenv's holds
    # the accounts only), never as a value here: pytest shows a failed test's arguments.
    passfile = folder / "pgpass"
    passfile.touch(mode=0o600)
    passfile.write_text(pgpass_line(info["host"], info["port"], info["user"], info["password"]))
    env = {"LOCALENV_HOME": str(laptop.home), "LOCALENV_PORT": str(laptop.port), "BENCH_HOST": info["host"],
           "BENCH_PORT": str(info["port"]), "BENCH_USER": info["user"], "PGPASSFILE": str(passfile)}
    benchmark.extra_info.update(tests=TESTS, workers=workers, kind=kind)
    try:
        _, passed = benchmark.pedantic(suite.run, args=(kind, TESTS, workers, folder, env), rounds=1, iterations=1)
    finally:
        passfile.unlink()
    shutil.rmtree(folder)  # kept with the suite's output when it failed
    assert passed == TESTS  # what was timed is the whole suite, every test passing


def _write_files(folder: Path, count: int = 300, size: int = 25_000) -> None:
    """About what CREATE DATABASE copies: a template's 300 files, 7.5 MB."""

    target = Path(tempfile.mkdtemp(prefix="pc-files-", dir=folder))
    try:
        data = b"x" * size
        for i in range(count):
            (target / f"f{i}").write_bytes(data)
        assert sum(1 for _ in target.iterdir()) == count
    finally:
        shutil.rmtree(target, ignore_errors=True)


@pytest.mark.benchmark(group="machine")
@pytest.mark.parametrize("where", ["disk", "memory"])
def test_machine_makes_files(benchmark, where):
    """The machine's own speed at what a clone costs most: making a template's files."""
    from localenv.server import memory_scratch

    folder = memory_scratch() if where == "memory" else Path(tempfile.gettempdir())
    if folder is None:
        pytest.skip("no memory file system here")
    benchmark.extra_info.update(where=where, folder=str(folder))
    benchmark.pedantic(_write_files, args=(folder,), rounds=5, iterations=1)
