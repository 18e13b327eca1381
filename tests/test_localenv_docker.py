"""localenv --backend docker on a real engine: the manifests' image (or its stand-in), data
kept in its named volume across down and up, backup, restore and reset for real, nothing
left behind but the volume `down` promises to keep. Skips with the reason without Docker."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from conformance.pg import ports
from conformance.targets import docker_engine
from localenv.docker_backend import prefix_for
from localenv.settings import Settings
from tests.laptop import Localenv
from tests.test_localenv import COUNT, INSERT

NO_DOCKER = docker_engine.unavailable_reason()
pytestmark = [pytest.mark.docker, pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")]


@pytest.fixture
def dockerenv(images):
    import docker

    home = Path(tempfile.mkdtemp(prefix="localenv-docker-test-"))
    home.chmod(0o711)
    env = Localenv(home, ports.free_port())
    prefix = prefix_for(Settings.resolve(home=home))
    client = docker.from_env()
    try:
        yield env, client, prefix
    finally:
        env.run("--backend", "docker", "down", ok=False)
        for container in client.containers.list(all=True, filters={"name": prefix}):
            container.remove(force=True, v=True)
        for volume in client.volumes.list(filters={"name": prefix}):
            volume.remove(force=True)
        for network in client.networks.list(names=[f"{prefix}-net"]):
            network.remove()
        client.close()
        shutil.rmtree(home, ignore_errors=True)


def test_docker_backend_up_down_backup_restore_reset(dockerenv):
    env, client, prefix = dockerenv
    d = ("--backend", "docker")
    first = env.run(*d, "up")
    assert "created and started (docker)" in first.stdout and f"127.0.0.1:{env.port}" in first.stdout
    assert env.run(*d, "psql", "--as", "app", "-qAtc", INSERT.format(tag="kept") + " RETURNING 1").stdout.strip() == "1"
    dump = env.run(*d, "backup").stdout.split("backup written: ")[1].split(" (")[0]
    assert Path(dump).is_file() and Path(dump).parent == env.home / "backups"

    assert "data is kept" in env.run(*d, "down").stdout
    assert client.containers.list(all=True, filters={"name": prefix}) == []
    assert client.networks.list(names=[f"{prefix}-net"]) == []
    assert [v.name for v in client.volumes.list(filters={"name": prefix})] == [f"{prefix}-postgresql-data"]

    warm = env.run(*d, "up")
    assert "applying" not in warm.stderr
    count = lambda tag: env.run(*d, "psql", "--as", "app", "-qAtc", COUNT.format(tag=tag)).stdout.strip()  # noqa: E731
    assert count("kept") == "1"
    env.run(*d, "psql", "--as", "app", "-qAtc", INSERT.format(tag="after"))
    env.run(*d, "restore", dump)
    assert (count("kept"), count("after")) == ("1", "0")

    env.run(*d, "reset", "--yes")
    assert count("kept") == "0"
    assert env.run(*d, "psql", "--as", "readonly", "-qAtc",
                   "SELECT count(*) FROM product_change.pc_circuit_breaker_state").stdout.strip() == "3"


def test_docker_backend_clones_and_destroy_leaves_nothing(dockerenv):
    """Clones on the docker backend's server (the template built by the init Job's container),
    then destroy: containers, volume and network gone; the backups stay."""
    import json

    import psycopg

    env, client, prefix = dockerenv
    d = ("--backend", "docker")
    env.run(*d, "up")
    made = json.loads(env.run(*d, "clone", "--json").stdout)
    with psycopg.connect(host=made["host"], port=made["port"], dbname=made["database"], user=made["user"],
                         password=made["password"]) as conn:
        assert conn.execute("SELECT count(*) FROM pc_circuit_breaker_state").fetchone()[0] == 3
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM pc_circuit_breaker_state")
    assert made["name"] in env.run(*d, "clones").stdout
    env.run(*d, "backup")
    done = env.run(*d, "destroy", "--yes")
    assert "kept the backups" in done.stdout
    assert client.containers.list(all=True, filters={"name": prefix}) == []
    assert client.volumes.list(filters={"name": prefix}) == []
    assert client.networks.list(names=[f"{prefix}-net"]) == []
    assert sorted(p.name for p in env.home.iterdir()) == ["backups"]
