from __future__ import annotations

import os

import pytest

from tests.project import ROOT, ProjectCopy


@pytest.fixture
def project(tmp_path) -> ProjectCopy:
    return ProjectCopy(tmp_path)


@pytest.fixture(scope="session")
def client():
    """A Docker client (tests that take it are marked and skipped where no engine answers)."""
    import docker

    c = docker.from_env(timeout=600)
    yield c
    c.close()


@pytest.fixture(scope="session")
def images(client):
    """The stand-in images, built once per session (cached by their inputs: a no-op when
    nothing changed), or a skip that says why they cannot be built here."""
    from conformance import manifests
    from conformance.errors import EnvironmentProblem
    from conformance.images import builder

    try:
        builder.build_all(client, manifests.load(ROOT / "manifests"), lambda m: None)
    except EnvironmentProblem as exc:
        # In CI the engine was started for these tests: stand-ins it cannot build are a broken
        # run, not a reason to skip every Docker test and go green.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI: the stand-in images cannot be built: {exc}")
        pytest.skip(f"stand-in images cannot be built here: {exc}")


@pytest.fixture
def localenv():
    """localenv's command line in a home of its own, on a free port; stopped and removed after."""
    from tests.laptop import new_localenv, remove_localenv

    env = new_localenv()
    try:
        yield env
    finally:
        remove_localenv(env)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_in_docker():
    """The session fails when it ends holding more containers, networks or volumes than it
    started with (an image's VOLUME made an anonymous volume that a container's removal left,
    a network never removed...). Under pytest-xdist each worker sees the others' runs: there
    only the controller's session, without workers, is judged."""
    import os

    from conformance.targets import docker_engine

    if docker_engine.unavailable_reason() is not None or os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    import docker

    engine = docker.from_env(timeout=120)

    def held() -> dict[str, set[str]]:
        return {"containers": {f"{c.name} ({c.short_id})" for c in engine.containers.list(all=True)},
                "networks": {n.name for n in engine.networks.list()},
                "volumes": {v.name for v in engine.volumes.list()}}

    before = held()
    yield
    after = held()
    engine.close()
    left = {kind: sorted(after[kind] - before[kind]) for kind in after if after[kind] - before[kind]}
    if left:
        pytest.fail(f"the test session left in Docker what it did not hold at its start: {left}")
