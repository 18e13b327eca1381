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
