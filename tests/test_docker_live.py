"""The docker target on a real engine: the images the manifests name (pulled, or the local
stand-ins built from Debian's packages), every live check, container-level breakages caught
by the named check, and nothing left behind. Skips with the reason where no engine answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conformance import manifests
from conformance.live.container_checks import ContainerFacts, judge_hardening, judge_limits, judge_mounts
from conformance.live.runner import run_live
from conformance.results import Status
from conformance.targets import docker_engine, docker_janitor
from tests.project import ROOT

NO_DOCKER = docker_engine.unavailable_reason()
STS = "postgresql-product-change-statefulset.yaml"
CRON = "postgresql-product-change-backup-cronjob.yaml"
C0 = ("spec", "template", "spec", "containers", 0)
CRON_C0 = ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0)
KUBE_ONLY = ("live-2.1-cluster", "live-8.2-pod", "live-3.1-limits-applied", "live-3.3", "live-9.1-network", "live-3.2", "live-7.2", "live-5.1-survives")


def ours(client) -> list[str]:
    """What runs of this test process (or of runs that have ended) left: containers, networks
    and volumes with our owner label naming this process or a dead one. A suite running
    beside this one (pytest -n, another checkout) is alive and not ours."""
    me = docker_janitor.owner()
    flt = {"label": docker_janitor.LABEL_OWNER}

    def left(labels) -> bool:
        owner = (labels or {}).get(docker_janitor.LABEL_OWNER, "")
        return owner == me or not docker_janitor.alive(owner)

    return ([f"container {c.name}" for c in client.containers.list(all=True, filters=flt) if left(c.labels)]
            + [f"network {n.name}" for n in client.networks.list(filters=flt) if left(n.attrs.get("Labels"))]
            + [f"volume {v.name}" for v in client.volumes.list(filters=flt) if left(v.attrs.get("Labels"))])


def run(path, only=None):
    notes: list[str] = []
    results = run_live(manifests.load(path), "docker", only=only, notes=notes)
    return {r.check_id: r for r in results}, notes


@pytest.mark.live
@pytest.mark.usefixtures("images")
@pytest.mark.docker
@pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")
def test_every_live_check_passes_in_docker_and_nothing_is_left(client):
    before = ours(client)
    results, notes = run(ROOT / "manifests")
    from conformance.results import Inconclusive

    bad = [r for r in results.values() if r.status not in (Status.PASSED, Status.SKIPPED)
           and not (r.status is Status.WARNED and all(isinstance(f, Inconclusive) for f in r.findings))]
    assert not bad, "\n".join(line for r in bad for line in (r.lines() or [r.message]))
    skipped = {cid for cid, r in results.items() if r.status is Status.SKIPPED}
    assert all(cid.startswith(KUBE_ONLY) for cid in skipped), skipped
    for container_check in ("live-9.1-container-hardening", "live-3.1-container-limits", "live-5.1-data-on-volume",
                            "live-14.3-metrics", "live-7.1-backup-restores"):
        assert results[container_check].status is Status.PASSED
    for note in notes:
        assert note.startswith("image: ") and "local stand-in" in note
    assert ours(client) == before == []


# -- a broken manifest is caught on docker as on native ------------------------------------

BREAKAGES = {
    "memory-limit": (lambda p: p.set(STS, "StatefulSet", C0 + ("resources", "limits", "memory"), "1536Mi"),
                     "live-3.1-container-limits", ["resources.limits.memory", "expected 2Gi = 2147483648 bytes",
                                                   "found 1610612736 bytes"]),
    "cpu-limit": (lambda p: p.set(STS, "StatefulSet", C0 + ("resources", "limits", "cpu"), "500m"),
                  "live-3.1-container-limits", ["resources.limits.cpu", "expected 1000m = 1 CPU", "found 0.5 CPU"]),
    "user": (lambda p: (p.set(STS, "StatefulSet", C0 + ("securityContext", "runAsUser"), 1000),
                        p.set(STS, "StatefulSet", C0 + ("securityContext", "runAsGroup"), 1000)),
             "live-9.1-container-hardening", ["securityContext.runAsUser/runAsGroup", "expected 999:999", "found 1000:1000"]),
    "read-only-root": (lambda p: p.set(STS, "StatefulSet", C0 + ("securityContext", "readOnlyRootFilesystem"), False),
                       "live-9.1-container-hardening", ["readOnlyRootFilesystem", "expected a read-only root: / mounted ro",
                                                        "found ReadonlyRootfs false, / mounted rw"]),
    # The image declares PGDATA's parent a VOLUME: Docker puts an anonymous volume there,
    # the server starts, and its data would go with the container.
    "data-mount-path": (lambda p: p.set(STS, "StatefulSet", C0 + ("volumeMounts", 0, "mountPath"), "/var/lib/postgresql/db"),
                        "live-5.1-data-on-volume", ["volumeMounts[postgresql-data].mountPath",
                                                    "expected the data claim's volume at /var/lib/postgresql/data",
                                                    "found the image's anonymous volume"]),
    "backup-mount-path": (lambda p: p.set(CRON, "CronJob", CRON_C0 + ("volumeMounts", 0, "mountPath"), "/backups"),
                          "live-7.1-backup-restores", []),
}


@pytest.mark.live
@pytest.mark.usefixtures("images")
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
@pytest.mark.docker
@pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")
def test_docker_catches_a_container_level_breakage(client, project, breakage):
    mutate, check_id, fragments = BREAKAGES[breakage]
    mutate(project)
    results, _ = run(project.manifests, only={check_id})
    result = results[check_id]
    assert result.status is Status.FAILED, f"{check_id}: {result.status} {result.message}"
    text = "\n".join(result.lines())
    assert f"{check_id} (plan {result.section})" in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    assert ours(client) == []


@pytest.mark.docker
@pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")
def test_an_image_with_no_stand_in_and_no_registry_is_one_line_exit_2(client, project):
    project.replace(f"manifests/{STS}", "image: postgres:14.23-bookworm", "image: postgres:14.99-bookworm")
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "docker", "--manifests",
                           str(project.manifests)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(errors) == 1 and "image postgres:14.99-bookworm" in errors[0], proc.stderr
    assert "python -m conformance images build" in errors[0]
    assert ours(client) == []


@pytest.mark.usefixtures("images")
@pytest.mark.docker
@pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")
def test_a_killed_run_is_cleaned_up_by_the_next(client):
    """SIGKILL leaves no atexit and, with no reaper image here, no Ryuk: the owner labels let
    the next run's sweep remove what the dead run left."""
    runner = subprocess.Popen([sys.executable, "-m", "conformance", "run", "--target", "docker"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in runner.stderr:
            if "running live checks" in line:
                break
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    left = ours(client)
    assert any(item.startswith("container ") for item in left), "the killed run left nothing to clean"
    folders = [f for f in Path(tempfile.gettempdir()).glob(docker_janitor.FOLDER_PATTERN)
               if (f / docker_janitor.OWNER_FILE).is_file()
               and (f / docker_janitor.OWNER_FILE).read_text().split("/")[1] == str(runner.pid)]
    assert len(folders) == 1, "the killed run's folder, marked with its owner"
    removed = docker_janitor.sweep(client)
    assert set(removed) >= {item for item in left if item.startswith("container ")} | {f"folder {folders[0]}"}
    assert ours(client) == [] and not folders[0].exists()


# -- the judges, fed broken facts (no engine needed) ----------------------------------------

GOOD = ContainerFacts(user="999:999", read_only=True, cap_drop=("ALL",), no_new_privileges=True,
                      memory=2 * 1024**3, nano_cpus=1_000_000_000, uid_gid="999:999", cap_bnd="0000000000000000",
                      root_options="ro,relatime,lowerdir=x",
                      mounts={"/var/lib/postgresql/data": "claim postgresql-data"},
                      data_directory="/var/lib/postgresql/data/pgdata")


def test_judges_pass_the_good_facts():
    assert judge_hardening(GOOD) == judge_limits(GOOD) == judge_mounts(GOOD) == []


@pytest.mark.parametrize("change,judge,fragment", [
    ({"cap_drop": ()}, judge_hardening, "CapDrop []"),
    ({"cap_bnd": "00000000a80425fb"}, judge_hardening, "CapBnd 00000000a80425fb"),
    ({"no_new_privileges": False}, judge_hardening, "privilege escalation allowed"),
    ({"uid_gid": "0:0"}, judge_hardening, "found 0:0"),
    ({"read_only": False}, judge_hardening, "ReadonlyRootfs false"),
    ({"root_options": "rw,relatime"}, judge_hardening, "mounted rw,relatime"),
    ({"memory": 0}, judge_limits, "found no limit"),
    ({"mounts": {"/var/lib/postgresql/data": "bind /tmp/x"}}, judge_mounts, "found bind /tmp/x"),
    ({"mounts": {}}, judge_mounts, "found nothing mounted there"),
    ({"mounts": {"/var/lib/postgresql/data": "claim backup-volume"}}, judge_mounts, "found claim backup-volume"),
    ({"data_directory": "/pgdata"}, judge_mounts, "found /pgdata"),
])
def test_judges_fail_on_broken_facts(change, judge, fragment):
    from dataclasses import replace

    findings = judge(replace(GOOD, **change))
    assert findings and any(fragment in f"found {f.found}" for f in findings), findings
    assert all(f.file == STS and f.obj == "StatefulSet/postgresql-product-change" for f in findings)


def test_a_dead_owners_label_is_swept_and_a_live_ones_is_not():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not docker_janitor.alive(f"{os.uname().nodename}/{dead.pid}/{time.time():.0f}")
    assert docker_janitor.alive(docker_janitor.owner())
    assert docker_janitor.alive("another-host/1/1"), "another machine's run is not ours to judge"


@pytest.mark.live
@pytest.mark.usefixtures("images")
@pytest.mark.docker
@pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")
def test_no_password_in_any_containers_environment(client, tmp_path):
    """docker inspect of the pod's containers and of the Job's and CronJob's: the passwords
    reach them as files only; the backup, reading them, still works."""
    from conformance import workload
    from conformance.targets.base import ACCOUNT_KEYS, account
    from conformance.targets.docker import LABEL, DockerTarget

    m = manifests.load(ROOT / "manifests")
    passwords = [account(m, role).password for role in ACCOUNT_KEYS]
    envs: dict[str, list[str]] = {}
    with DockerTarget(m, workdir=tmp_path / "work") as target:
        for c in client.containers.list(filters={"label": f"{LABEL}={target.prefix}"}):
            envs[c.name] = client.api.inspect_container(c.id)["Config"]["Env"]
        assert len(envs) == 2, f"the database and the exporter: {sorted(envs)}"
        for container in (workload.schema_init(m), workload.backup(m)):
            spec = target.script_spec(container)
            run = client.containers.create(**target._create_kwargs(spec), network=target.network_name)
            try:
                envs[container.owner.ref] = client.api.inspect_container(run.id)["Config"]["Env"]
            finally:
                run.remove(force=True, v=True)  # v: the image's VOLUME made an anonymous one
        for container in (workload.schema_init(m), workload.backup(m)):  # the accounts, then a dump as the admin
            proc = target.run_script(container)
            assert proc.returncode == 0, f"{container.owner.ref}: {proc.stderr[-500:]}"
    assert len(envs) == 4
    leaks = [f"{name}: {entry.split('=')[0]}" for name, env in envs.items() for entry in env
             if any(p in entry for p in passwords)]
    assert leaks == [], "passwords in a container's environment (names only shown)"


@pytest.mark.live
@pytest.mark.usefixtures("images")
@pytest.mark.docker
@pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")
def test_a_stale_postmaster_pid_is_cleared_in_docker_and_a_second_server_refused(client, tmp_path):
    """The StatefulSet's init container, run as a container of its own on the data volume before
    the server's: an empty lock, PID 1, a PID that does not exist, each back by itself; a second
    server in the running container still refused. Without the init container the empty lock
    keeps the container down."""
    from conformance.drills import pidfile
    from conformance.targets.docker import DockerTarget
    from tests.project import DELETE, ProjectCopy

    with DockerTarget(manifests.load(ROOT / "manifests")) as target:
        trials = pidfile.drill(target)
        refused, said = pidfile.second_server_refused(target)
    assert [t.case for t in trials if t.came_back] == [c for c, _ in pidfile.cases(target)], trials
    assert refused and 'lock file "postmaster.pid" already exists' in said, said
    copy = ProjectCopy(tmp_path)
    copy.set(STS, "StatefulSet", ("spec", "template", "spec", "initContainers"), DELETE)
    with DockerTarget(manifests.load(copy.manifests)) as target:
        empty = pidfile.drill(target)[0]
    assert empty.case == "empty" and not empty.came_back and 'lock file "postmaster.pid" is empty' in empty.details[0], empty
    assert ours(client) == []
