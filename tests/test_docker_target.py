"""The docker target's decisions, without Docker: the container spec built from the manifests
(and that a change to the StatefulSet changes it the same way), names, DNS aliases, mounts
and ports. The live run at the bottom needs a Docker engine and skips without one."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from conformance import manifests, workload
from conformance.errors import EnvironmentProblem, InputError
from conformance.targets import docker_engine
from conformance.targets.container_spec import container_spec
from conformance.targets.docker import DockerTarget
from tests.project import DELETE, ROOT, ProjectCopy

STS = "postgresql-product-change-statefulset.yaml"
C0 = ("spec", "template", "spec", "containers", 0)
GiB = 1024**3


def _target(path=ROOT / "manifests", tmp_path=None, **kw) -> DockerTarget:
    return DockerTarget(manifests.load(path), workdir=tmp_path, prefix="pc-test", **kw)


@pytest.fixture
def target(tmp_path):
    return _target(tmp_path=tmp_path)


def test_db_container_is_the_statefulsets(target, tmp_path):
    spec = target.db_spec()
    assert spec.image == "postgres:14.23-bookworm"
    assert spec.entrypoint is None, "the image's entrypoint runs, as in the pod"
    assert spec.command == ("-c", "config_file=/etc/postgresql/postgresql.conf")
    assert spec.env["POSTGRES_USER_FILE"] == "/run/secrets/postgresql/superuser-username"
    assert spec.env["PGDATA"] == "/var/lib/postgresql/data/pgdata"
    assert not any(k in spec.env for k in ("POSTGRES_USER", "POSTGRES_PASSWORD")), "credentials are files"
    secrets = spec.mount_at("/run/secrets/postgresql")
    assert (secrets.kind, secrets.read_only, secrets.source) == ("bind", True, str(tmp_path / "secrets" / "superuser-credentials"))
    folder = tmp_path / "secrets" / "superuser-credentials"
    assert sorted(p.name for p in folder.iterdir()) == ["superuser-password", "superuser-username"]
    assert (folder / "superuser-username").read_text() == "postgres", "the Secret's value, as the kubelet writes it"
    assert spec.user == "999:999" and spec.group_add == ("999",)
    assert spec.mem_limit == 2 * GiB and spec.nano_cpus == 1_000_000_000
    assert spec.read_only and spec.cap_drop == ("ALL",) and spec.security_opt == ("no-new-privileges:true",)
    assert spec.shm_size == 256 * 1024**2
    data = spec.mount_at("/var/lib/postgresql/data")
    assert (data.kind, data.source, data.read_only) == ("volume", "pc-test-postgresql-data", False)
    config = spec.mount_at("/etc/postgresql")
    assert (config.kind, config.read_only) == ("bind", True)
    assert config.source == str(tmp_path / "config" / "postgresql-config")
    assert {m.target for m in spec.mounts if m.kind == "tmpfs"} == {"/var/run/postgresql", "/tmp"}
    assert "dev_password" not in repr(spec), "the spec's repr must not show the Secret's values"


def test_docker_kwargs_are_what_docker_run_takes(target):
    kwargs = target.db_spec().docker_kwargs()
    assert kwargs["volumes"]["pc-test-postgresql-data"] == {"bind": "/var/lib/postgresql/data", "mode": "rw"}
    assert kwargs["tmpfs"] == {"/var/run/postgresql": "mode=1777", "/tmp": "mode=1777"}
    assert kwargs["command"] == ["-c", "config_file=/etc/postgresql/postgresql.conf"]
    assert "entrypoint" not in kwargs and None not in kwargs.values()
    assert kwargs["labels"] == {"io.phonebill.product-change-db": "pc-test"}


CHANGES = {
    "image": (C0 + ("image",), "postgres:14.99-bookworm", lambda s: s.image, "postgres:14.99-bookworm"),
    "memory limit": (C0 + ("resources", "limits", "memory"), "3Gi", lambda s: s.mem_limit, 3 * GiB),
    "cpu limit": (C0 + ("resources", "limits", "cpu"), "1500m", lambda s: s.nano_cpus, 1_500_000_000),
    "no cpu limit": (C0 + ("resources", "limits", "cpu"), DELETE, lambda s: s.nano_cpus, None),
    "env value": (C0 + ("env", 0, "value"), "other_db", lambda s: s.env["POSTGRES_DB"], "other_db"),
    "mount path": (C0 + ("volumeMounts", 1, "mountPath"), "/etc/pg", lambda s: s.mount_at("/etc/pg").kind, "bind"),
    "args": (C0 + ("args",), ["-c", "config_file=/etc/pg/x.conf"], lambda s: s.command, ("-c", "config_file=/etc/pg/x.conf")),
    "command": (C0 + ("command",), ["docker-entrypoint.sh", "postgres"], lambda s: s.entrypoint,
                ("docker-entrypoint.sh", "postgres")),
    "user": (("spec", "template", "spec", "securityContext", "runAsUser"), 70, lambda s: s.user, "70:999"),
    "container user wins": (C0 + ("securityContext", "runAsUser"), 1001, lambda s: s.user, "1001:999"),
    "writable root": (C0 + ("securityContext", "readOnlyRootFilesystem"), False, lambda s: s.read_only, False),
    "shm size": (("spec", "template", "spec", "volumes", 3, "emptyDir", "sizeLimit"), "1Gi", lambda s: s.shm_size, GiB),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_statefulset_change_changes_the_container_the_same_way(tmp_path, change):
    path, value, read, expected = CHANGES[change]
    project = ProjectCopy(tmp_path / "p")
    project.set(STS, "StatefulSet", path, value)
    spec = _target(project.manifests, tmp_path / "w").db_spec()
    assert read(spec) == expected
    if change != "image":
        assert spec.image == "postgres:14.23-bookworm"


def test_job_and_cronjob_scripts_run_in_their_own_containers(target, tmp_path):
    m = target.manifests
    job = target.script_spec(workload.schema_init(m))
    assert job.image == "postgres:14.23-bookworm" and job.entrypoint[:2] == ("/bin/bash", "-c")
    assert job.mount_at("/sql").source == str(tmp_path / "sql") and job.mount_at("/sql").read_only
    assert job.env["PGHOST"] == "postgresql-product-change"
    backup = target.script_spec(workload.backup(m), env={"PGPASSWORD": "x"}, mounts={"/backup": tmp_path / "elsewhere"})
    assert backup.mount_at("/backup").source == str(tmp_path / "elsewhere") and not backup.mount_at("/backup").read_only
    assert backup.env["PGPASSWORD"] == "x" and backup.mem_limit == 512 * 1024**2
    assert job.name != backup.name, "each script container gets a name of its own"
    with pytest.raises(ValueError, match="mounts nothing at /nowhere"):
        target.script_spec(workload.backup(m), mounts={"/nowhere": tmp_path})


def test_service_names_resolve_on_the_docker_network(target):
    aliases = target.aliases()
    for name in ("postgresql-product-change", "postgresql-product-change.phonebill-dev.svc.cluster.local",
                 "postgresql-product-change-headless.phonebill-dev"):
        assert name in aliases


def test_ports_are_published_on_loopback(tmp_path):
    assert _target(tmp_path=tmp_path).port_binding()["5432/tcp"] == ("127.0.0.1", None)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        busy.listen()
        moved = _target(tmp_path=tmp_path, prefer_port=taken).port_binding()["5432/tcp"][1]
        assert moved != taken
        with pytest.raises(EnvironmentProblem, match=f"port {taken} on 127.0.0.1 is in use"):
            _target(tmp_path=tmp_path, port=taken).port_binding()


def test_a_volume_without_a_source_is_an_error_not_a_silent_omission(target):
    with pytest.raises(InputError, match="no source for volume 'postgresql-config' mounted at /etc/postgresql"):
        container_spec(target.db, "x", {"postgresql-data": "vol"})


def test_a_bad_limit_names_the_object(tmp_path):
    project = ProjectCopy(tmp_path / "p")
    project.set(STS, "StatefulSet", C0 + ("resources", "limits", "memory"), "two gigs")
    with pytest.raises(InputError, match="StatefulSet/postgresql-product-change container postgresql resources.limits"):
        _target(project.manifests, tmp_path / "w").db_spec()


def test_engine_problems_read_as_one_line():
    reason = docker_engine._why(Exception("('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"))
    assert reason == "no socket there"
    assert docker_engine._why(Exception("Permission denied")).startswith("permission denied")


# -- where Docker is absent -------------------------------------------------------------------

NO_DOCKER = docker_engine.unavailable_reason()


@pytest.mark.skipif(NO_DOCKER is None, reason="Docker is running here; tests/test_docker_live.py runs the target for real")
def test_run_target_docker_without_an_engine_checked_nothing_exit_3():
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "docker"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3 and "the docker target needs a running Docker engine" in proc.stderr
    allowed = subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "docker", "--allow-skip"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr
    assert "Traceback" not in allowed.stderr and "0 passed, 0 failed, 0 errors" in allowed.stdout


@pytest.mark.skipif(NO_DOCKER is None, reason="Docker is running here")
def test_localenv_docker_backend_says_docker_is_not_running(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "localenv", "--home", str(tmp_path), "--backend", "docker", "up"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: Docker is not running") and "Fix: start Docker" in proc.stderr


# The runs on a real engine are in test_docker_live.py.

@pytest.mark.parametrize("which", ["db", "job", "backup"])
def test_docker_py_accepts_the_container_spec(target, which):
    """docker-py's own argument builder (no engine needed) turns the spec into the HostConfig
    the engine gets: a misspelt or misplaced keyword fails here, not on a user's machine."""
    from docker.models.containers import _create_container_args

    spec = {"db": target.db_spec, "job": lambda: target.script_spec(workload.schema_init(target.manifests)),
            "backup": lambda: target.script_spec(workload.backup(target.manifests))}[which]()
    kwargs = {**spec.docker_kwargs(), "detach": True, "network": "pc-test-net", "version": "1.44"}
    if which == "db":
        kwargs.update(ports=target.port_binding(), networking_config={"pc-test-net": {"Aliases": target.aliases()}})
    host = _create_container_args(kwargs)["host_config"]
    assert host["Memory"] == spec.mem_limit and host["NanoCpus"] == spec.nano_cpus
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"] and host["NetworkMode"] == "pc-test-net"
    assert all(":" in bind for bind in host["Binds"])


def test_only_ephemeral_runs_are_left_to_the_reaper(tmp_path):
    from testcontainers.core.labels import LABEL_SESSION_ID

    assert LABEL_SESSION_ID in _target(tmp_path=tmp_path)._engine_labels({"a": "b"})
    assert _target(tmp_path=tmp_path, persistent=True)._engine_labels({"a": "b"}) == {"a": "b"}


def test_sidecars_join_the_database_containers_network(target):
    (exporter,) = target.sidecar_specs()
    assert exporter.image == "quay.io/prometheuscommunity/postgres-exporter:v0.17.1"
    assert exporter.env["DATA_SOURCE_USER_FILE"] == "/run/secrets/postgres-exporter/readonly-username"
    assert exporter.mount_at("/run/secrets/postgres-exporter").read_only, "the read-only account's keys, as files"
    assert exporter.user == "65534:65534" and exporter.read_only and exporter.mem_limit == 128 * 1024**2
    assert target.port_binding()["9187/tcp"] == ("127.0.0.1", None), "published by the pod's network owner"
    from docker.models.containers import _create_container_args

    host = _create_container_args({**exporter.docker_kwargs(), "network_mode": "container:abc", "version": "1.44"})["host_config"]
    assert host["NetworkMode"] == "container:abc"
