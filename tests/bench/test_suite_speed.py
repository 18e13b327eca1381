"""Speed of the suite itself, reported by pytest-benchmark (`nox -s bench`), never asserted
against the clock: the gate against loading the YAML alone, a whole native run, and
localenv's first `up`, warm `up` (data exists, server stopped) and `down`; with Docker, the
stand-in build on a warm cache and a whole docker run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance.targets import docker_engine
from tests.project import ROOT


def _gate():
    # A fresh interpreter each time: the user's wall time includes imports.
    subprocess.run([sys.executable, "-m", "conformance", "check"], cwd=ROOT, check=True, capture_output=True)


def _load_yaml_only():
    subprocess.run([sys.executable, "-c", "from conformance import manifests; manifests.load('manifests')"],
                   cwd=ROOT, check=True, capture_output=True)


def _native_run():
    subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "native"], cwd=ROOT, check=True,
                   capture_output=True)


@pytest.mark.benchmark(group="gate")
def test_gate_wall_time(benchmark):
    """Warm: as on every save, the schema results of unchanged objects come from the cache."""
    benchmark.pedantic(_gate, rounds=5, warmup_rounds=1)


def _gate_cold():
    from conformance.pg.binaries import ENV_CACHE

    with tempfile.TemporaryDirectory() as cache:  # nothing cached: every object validated, every version
        subprocess.run([sys.executable, "-m", "conformance", "check"], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, ENV_CACHE: cache})


@pytest.mark.benchmark(group="gate")
def test_gate_cold_cache_wall_time(benchmark):
    benchmark.pedantic(_gate_cold, rounds=5, warmup_rounds=1)


def _kubernetes_validate_one_version():
    """The peer: kubernetes-validate --strict of the same manifests for one Kubernetes version."""
    files = sorted(str(p) for p in [*(ROOT / "manifests").glob("*.yaml"), *(ROOT / "manifests" / "shared").glob("*.yaml")]
                   if p.name != "kustomization.yaml")
    subprocess.run([str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "-k", "1.30.0", "--quiet",
                    *files], cwd=ROOT, check=True, capture_output=True)


@pytest.mark.benchmark(group="gate")
def test_kubernetes_validate_one_version_wall_time(benchmark):
    benchmark.pedantic(_kubernetes_validate_one_version, rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="gate")
def test_load_yaml_wall_time(benchmark):
    benchmark.pedantic(_load_yaml_only, rounds=5, warmup_rounds=1)


@pytest.fixture
def change_repo(tmp_path):
    """A throw-away repository: the base, and a commit changing the pod template (sql/ unchanged)."""
    from tests.test_changes import Repo

    repo = Repo(tmp_path / "repo")
    repo.set("postgresql-product-change-statefulset.yaml", "StatefulSet",
             ("spec", "template", "metadata", "annotations", "example.com/owner"), "team-a")
    repo.commit("template")
    return repo


def _judged(proc, check_id: str, status: str):
    """A timed check --base counts only when it ran to its verdict: exit 0, and the change's
    check with the status the change must give (a timing of an error measures nothing)."""
    import json

    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    statuses = {c["id"]: c["status"] for c in json.loads(proc.stdout)["checks"]}
    assert statuses.get(check_id) == status, (check_id, statuses.get(check_id))
    return proc


@pytest.mark.benchmark(group="gate")
def test_gate_with_base_wall_time(benchmark, change_repo):
    """check --base when sql/ did not change: the target is under 2 s here."""
    benchmark.pedantic(lambda: _judged(change_repo.check("--k8s-versions", "1.30-1.35", "--format", "json"), "change-downtime",
                                       "warned"),
                       rounds=5, warmup_rounds=1)


@pytest.mark.live
@pytest.mark.benchmark(group="change")
def test_gate_with_base_and_a_changed_sql_wall_time(benchmark, change_repo):
    """check --base when sql/ changed: two scratch embedded servers compare the catalogs (target under 20 s)."""
    change_repo.replace("sql/03-data.sql", "RESET ROLE;", "-- edited\nRESET ROLE;")
    from conformance import schema_configmap

    schema_configmap.write(change_repo.sql, change_repo.manifests)
    change_repo.commit("sql")
    benchmark.pedantic(lambda: _judged(change_repo.check("--format", "json"), "change-schema", "passed"), rounds=2, warmup_rounds=0)


def _fresh_server():
    """The peer: what pytest-postgresql does for a fresh server (initdb, pg_ctl -w start, a
    query, stop), with the same binaries."""
    from conformance.pg.binaries import locate

    bindir = locate().bindir
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        data, env = Path(tmp) / "d", {**os.environ, "LC_ALL": "C.UTF-8"}
        run_as = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
        subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
                       check=True, capture_output=True, env=env)
        # Not captured: the server inherits pg_ctl's output, and a pipe would stay open until it stops.
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(Path(tmp) / "log"), "-o",
                        f"-c listen_addresses='' -c unix_socket_directories={tmp}", "start"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            subprocess.run([str(bindir / "psql"), "-h", tmp, "-U", "postgres", "-c", "SELECT 1"], check=True,
                           capture_output=True, env=env)
        finally:
            subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-m", "immediate", "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


@pytest.mark.live
@pytest.mark.benchmark(group="native")
def test_fresh_server_wall_time(benchmark):
    benchmark.pedantic(_fresh_server, rounds=3, warmup_rounds=0)


@pytest.mark.live
@pytest.mark.benchmark(group="native")
def test_nox_conformance_warm_wall_time(benchmark):
    """A warm `nox -s conformance` (its venv installed, the install skipped), as users run it."""
    nox = ROOT / ".venv" / "bin" / "nox"
    if not nox.exists():
        pytest.skip("no .venv/bin/nox (scripts/bootstrap makes it)")
    subprocess.run([str(nox), "-s", "conformance"], cwd=ROOT, check=True, capture_output=True)  # warm it
    benchmark.pedantic(lambda: subprocess.run([str(nox), "-s", "conformance"], cwd=ROOT, check=True,
                                              capture_output=True), rounds=2, warmup_rounds=0)


@pytest.mark.live
@pytest.mark.benchmark(group="native")
def test_native_run_wall_time(benchmark):
    benchmark.pedantic(_native_run, rounds=2, warmup_rounds=0)


@pytest.fixture
def localenv_home():
    home = Path(tempfile.mkdtemp(prefix="localenv-bench-"))
    home.chmod(0o711)
    env = {**os.environ, "LOCALENV_HOME": str(home)}
    try:
        yield home, env
    finally:
        _localenv(env, "down")
        shutil.rmtree(home, ignore_errors=True)


def _localenv(env, *args):
    subprocess.run([sys.executable, "-m", "localenv", *args], cwd=ROOT, env=env, check=True, capture_output=True)


@pytest.mark.live
@pytest.mark.benchmark(group="localenv")
def test_localenv_first_up(benchmark, localenv_home):
    """initdb, start, schema: the binaries are already unpacked (the cache is warm)."""
    home, env = localenv_home

    def fresh():
        _localenv(env, "down")
        shutil.rmtree(home / "native", ignore_errors=True)
        return (), {}

    benchmark.pedantic(lambda: _localenv(env, "up"), setup=fresh, rounds=3)


@pytest.mark.live
@pytest.mark.benchmark(group="localenv")
def test_localenv_warm_up(benchmark, localenv_home):
    home, env = localenv_home
    _localenv(env, "up")
    benchmark.pedantic(lambda: _localenv(env, "up"), setup=lambda: _localenv(env, "down"), rounds=5)


@pytest.mark.live
@pytest.mark.benchmark(group="localenv")
def test_localenv_down(benchmark, localenv_home):
    home, env = localenv_home
    benchmark.pedantic(lambda: _localenv(env, "down"), setup=lambda: _localenv(env, "up"), rounds=5)


NO_DOCKER = docker_engine.unavailable_reason()
needs_docker = pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")


@pytest.mark.docker
@needs_docker
@pytest.mark.benchmark(group="docker")
def test_image_build_warm_cache(benchmark, images):
    """`images build` when the stand-ins exist and nothing changed (the usual case)."""
    benchmark.pedantic(lambda: subprocess.run([sys.executable, "-m", "conformance", "images", "build"], cwd=ROOT,
                                              check=True, capture_output=True), rounds=3, warmup_rounds=0)


@pytest.mark.docker
@needs_docker
@pytest.mark.benchmark(group="docker")
def test_docker_run_wall_time(benchmark, images):
    """A whole docker run once the images exist: start, schema, every check, teardown."""
    benchmark.pedantic(lambda: subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "docker"],
                                              cwd=ROOT, check=True, capture_output=True), rounds=2, warmup_rounds=0)
