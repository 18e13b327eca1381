"""The kind and cluster targets' decisions, without a cluster: the pinned kind config, the
storage shim (rendered by the real kustomize in kubectl when it is here), Jobs built from
the manifests' containers, status polling, the port-forward supervisor (against a stand-in
process that behaves like kubectl port-forward across a pod restart), and the failure dump."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from conformance import manifests, workload
from conformance.errors import EnvironmentProblem
from conformance.targets import kind_cluster
from conformance.targets.failure_dump import dump
from conformance.targets.kind import KindTarget, unavailable_reason
from conformance.targets.kube import job_for, job_outcome, statefulset_ready
from conformance.targets.kubectl import Kubectl
from conformance.targets.port_forward import PortForward
from conformance.targets.waiting import NotYet, wait_until
from tests.project import ROOT

M = manifests.load(ROOT / "manifests")


# -- kind config and the storage shim -----------------------------------------------------------

def test_kind_config_pins_the_node_image_and_mounts_the_storage(tmp_path):
    config = kind_cluster.cluster_config(tmp_path)
    node = config["nodes"][0]
    assert node["image"].startswith("kindest/node:v1.34.0@sha256:") and len(node["image"].split("@sha256:")[1]) == 64
    assert node["extraMounts"] == [{"hostPath": str(tmp_path), "containerPath": "/var/local-path-provisioner"}]
    assert kind_cluster.KIND_VERSION == "v0.30.0"


def _render(directory) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (its built-in kustomize)")
def test_overlay_changes_only_the_storage_class(tmp_path):
    target = KindTarget(M, manifests_dir=ROOT / "manifests", workdir=tmp_path)
    shimmed = {(d["kind"], d["metadata"]["name"]): d for d in _render(target.overlay_dir())}
    original = {(d["kind"], d["metadata"]["name"]): d
                for folder in (ROOT / "manifests" / "shared", ROOT / "manifests") for d in _render(folder)}
    assert shimmed.keys() == original.keys(), "manifests/ and manifests/shared/ (applied first on a real cluster)"
    sc_key = ("StorageClass", "managed-standard")
    sc = shimmed.pop(sc_key)
    assert sc["provisioner"] == "rancher.io/local-path" and "parameters" not in sc and sc["reclaimPolicy"] == "Delete"
    assert original.pop(sc_key)["provisioner"] == "disk.csi.azure.com"
    assert shimmed == original, "every other object is applied exactly as in manifests/"


def test_local_directories_map_into_the_kind_node(tmp_path):
    target = KindTarget(M, workdir=tmp_path)
    inside = target.storage_root / "broken-sql"
    assert target.node_paths({"/sql": inside}) == {"/sql": "/var/local-path-provisioner/broken-sql"}
    with pytest.raises(ValueError, match="is not under the kind storage directory"):
        target.node_paths({"/sql": tmp_path / "elsewhere"})
    claim_dir = target.storage_root / "pvc-123_phonebill-dev_postgresql-product-change-backup-pvc"
    with pytest.raises(EnvironmentProblem, match="has no volume directory"):
        _ = target.backup_dir
    claim_dir.mkdir(parents=True)
    assert target.backup_dir == claim_dir


def test_kind_config_file_is_written_for_kind(tmp_path):
    target = KindTarget(M, workdir=tmp_path)
    assert yaml.safe_load(target.config_path().read_text())["nodes"][0]["extraMounts"][0]["hostPath"] == str(target.storage_root)


# -- Jobs from the manifests' containers ----------------------------------------------------

def test_job_runs_the_container_as_defined_with_overrides():
    backup = workload.backup(M)
    job = job_for(backup, "b-1", env={"PGPASSWORD": "wrong"}, host_paths={"/backup": "/var/local-path-provisioner/x"},
                  labels={"run": "r"})
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGPASSWORD"] == {"name": "PGPASSWORD", "value": "wrong"}, "an override is added"
    assert [e["name"] for e in container["env"]].count("PGPASSWORD") == 1
    assert env["PGUSER_FILE"]["value"] == "/run/secrets/postgresql/admin-username", "other entries stay as written"
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/backup")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["hostPath"] == {"path": "/var/local-path-provisioner/x", "type": "Directory"}
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    assert pod["securityContext"]["runAsUser"] == 999 and job["metadata"]["namespace"] == "phonebill-dev"
    assert container["command"] == backup.spec["command"]
    with pytest.raises(ValueError, match="mounts nothing at /nowhere"):
        job_for(backup, "b-2", host_paths={"/nowhere": "/x"})


def test_statefulset_and_job_status_are_read_not_guessed():
    sts = {"metadata": {"generation": 2}, "spec": {"replicas": 1},
           "status": {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 1}}
    assert statefulset_ready(sts)
    for broken, message in [({**sts, "status": {**sts["status"], "readyReplicas": 0}}, "0/1 replicas ready"),
                            ({**sts, "status": {**sts["status"], "observedGeneration": 1}}, "not observed"),
                            (None, "not found")]:
        with pytest.raises(NotYet, match=message):
            statefulset_ready(broken)
    assert job_outcome({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}) == "Complete"
    assert job_outcome({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}) == "Failed"
    with pytest.raises(NotYet, match="active 1"):
        job_outcome({"status": {"active": 1}})


def test_waits_are_bounded_and_say_what_they_saw():
    with pytest.raises(EnvironmentProblem, match=r"StatefulSet ready: not after 0.2 s \(last: NotYet: 0/1 replicas ready\)"):
        wait_until(lambda: statefulset_ready({"spec": {"replicas": 1}, "status": {}}), "StatefulSet ready", 0.2, 0.05)


# -- port-forward supervisor ----------------------------------------------------------------

FAKE_PORT_FORWARD = textwrap.dedent("""
    # Behaves like `kubectl port-forward`: binds the local port (0: any), says so, serves one
    # connection, then ends as kubectl does when its pod goes away.
    import socket, sys
    port = int(sys.argv[1])
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen()
    print(f"Forwarding from 127.0.0.1:{srv.getsockname()[1]} -> 5432", flush=True)
    conn, _ = srv.accept(); conn.sendall(b"pong"); conn.close(); srv.close()
""")


def _ask(port: int) -> bytes:
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                return conn.recv(4)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # the supervisor is bringing the forward back


def test_port_forward_comes_back_on_the_same_port_after_a_pod_restart(tmp_path):
    script = tmp_path / "fake_port_forward.py"
    script.write_text(FAKE_PORT_FORWARD)
    forward = PortForward(lambda local: [sys.executable, str(script), str(local)], 5432)
    try:
        port = forward.start()
        assert _ask(port) == b"pong"
        assert _ask(port) == b"pong", "the second connection reaches the restarted forward"
        assert forward.local_port == port and forward.restarts >= 1
    finally:
        forward.stop()
    assert not forward.alive


def test_port_forward_that_never_forwards_fails_with_kubectls_words(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("import sys; print('error: pods \"x\" not found', file=sys.stderr); sys.exit(1)")
    forward = PortForward(lambda local: [sys.executable, str(script)], 5432)
    with pytest.raises(EnvironmentProblem, match="no Forwarding line within 1 s"):
        forward.start(timeout=1)
    assert not forward.alive


# -- failure dump -----------------------------------------------------------------------------

def test_failure_dump_collects_each_part_and_survives_failing_ones(tmp_path):
    fake = tmp_path / "kubectl"
    fake.write_text(textwrap.dedent("""\
        #!/bin/sh
        case "$*" in
          *"get pods -o name"*) echo pod/db-0; echo pod/init-abc ;;
          *"describe job"*) echo "boom" >&2; exit 1 ;;
          *) echo "ran: $*" ;;
        esac
    """))
    fake.chmod(0o755)
    path = dump(Kubectl("kind-x", "phonebill-dev", binary=str(fake)), tmp_path / "out" / "dump.txt", "pod not Ready")
    text = path.read_text()
    assert "# reason: pod not Ready" in text and "## events" in text
    assert "ran: --context kind-x --namespace phonebill-dev get events" in text
    assert "## describe jobs" in text and "(kubectl failed: boom)" in text
    assert "## logs pod/db-0" in text and "## previous logs pod/init-abc" in text


# -- where kind is absent ----------------------------------------------------------------------

NO_KIND = unavailable_reason()


@pytest.mark.skipif(NO_KIND is None, reason="kind runs here; the live test covers it")
def test_run_target_kind_where_kind_is_missing_checked_nothing_exit_3():
    """Nothing ran is not green: exit 3 with one line, unless the user allows the skip."""
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "kind"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: the kind target cannot run here") and "nothing was checked" in proc.stderr
    allowed = subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "kind", "--allow-skip"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0 and "skipped: the kind target cannot run here" in allowed.stderr
    assert "0 passed, 0 failed, 0 errors" in allowed.stdout and "Traceback" not in allowed.stderr


def test_cluster_target_without_a_context_says_so(tmp_path):
    if shutil.which("kubectl") is None:
        pytest.skip("needs kubectl")
    env = {"KUBECONFIG": str(tmp_path / "empty-kubeconfig"), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "cluster"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2 and "no kubectl context" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.live
@pytest.mark.kind
@pytest.mark.skipif(NO_KIND is not None, reason=f"needs kind: {NO_KIND}")
def test_every_check_passes_on_kind(tmp_path):
    from conformance.live.runner import run_live
    from conformance.results import Status

    results = run_live(M, "kind", manifests_dir=ROOT / "manifests")
    # kind is not the plan's cluster, and not a container engine the checks read directly.
    expected_skips = {"live-2.1-cluster", "live-9.1-container-hardening", "live-3.1-container-limits",
                      "live-5.1-data-on-volume"}
    bad = [r for r in results if r.status is not Status.PASSED
           and not (r.status is Status.SKIPPED and r.check_id in expected_skips)]
    assert not bad, "\n".join(line for r in bad for line in (r.lines() or [r.message]))


@pytest.mark.live
@pytest.mark.kind
@pytest.mark.skipif(NO_KIND is not None, reason=f"needs kind: {NO_KIND}")
def test_pod_delete_check_fails_when_the_data_is_on_an_emptydir(tmp_path):
    """The broken manifest the survival check guards against: data on an emptyDir."""
    from conformance.live.runner import run_live
    from conformance.results import Status
    from tests.project import ProjectCopy

    project = ProjectCopy(tmp_path / "p")
    sts = "postgresql-product-change-statefulset.yaml"
    project.set(sts, "StatefulSet", ("spec", "volumeClaimTemplates"), [])
    volumes = M.find("StatefulSet").get(("spec", "template", "spec", "volumes"))
    project.set(sts, "StatefulSet", ("spec", "template", "spec", "volumes"),
                volumes + [{"name": "postgresql-data", "emptyDir": {}}])
    (result,) = run_live(manifests.load(project.manifests), "kind", manifests_dir=project.manifests,
                         only={"live-5.1-survives-pod-delete"}, cluster="pc-conformance-mutation")
    assert result.status is Status.FAILED and "rows after a pod delete" in "\n".join(result.lines())


FAKE_FORWARD_PROXY = textwrap.dedent("""
    # Behaves like `kubectl port-forward` to a pod whose server listens on TARGET: relays
    # every connection until it is terminated.
    import socket, sys, threading
    local, target = int(sys.argv[1]), int(sys.argv[2])
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", local)); srv.listen()
    print(f"Forwarding from 127.0.0.1:{srv.getsockname()[1]} -> 5432", flush=True)
    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            a.close(); b.close()
    while True:
        client, _ = srv.accept()
        upstream = socket.create_connection(("127.0.0.1", target))
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
""")


@pytest.mark.live
def test_kube_target_reaches_the_server_through_its_port_forward(tmp_path):
    """The kube targets' path to the server (port-forward, ready-by-query, accounts) against a
    real PostgreSQL 14 behind a stand-in for kubectl port-forward."""
    from conformance.targets.cluster import ClusterTarget
    from conformance.targets.native import NativeTarget

    script = tmp_path / "proxy.py"
    script.write_text(FAKE_FORWARD_PROXY)
    with NativeTarget(M) as server:
        kube = ClusterTarget(M, context="ctx", workdir=tmp_path / "w")
        kube.forward = PortForward(lambda local: [sys.executable, str(script), str(local), str(server.port)], 5432)
        try:
            kube.forward.start()
            kube._wait_query()
            import psycopg

            with psycopg.connect(**kube.conninfo("superuser", dbname="postgres")) as conn:
                assert conn.execute("SHOW server_version").fetchone()[0].startswith("14.")
        finally:
            kube.stop()


def test_cluster_target_skips_what_needs_local_mounts_and_cleans_its_folder():
    from conformance.registry import Skip
    from conformance.targets.cluster import ClusterTarget

    target = ClusterTarget(M, context="dev-aks")
    assert target.node_paths(None) == {}
    with pytest.raises(Skip, match="cannot mount local directories"):
        target.node_paths({"/sql": target.workdir / "broken-sql"})
    assert target.sql_dir.joinpath("01-roles.sql").exists(), "the schema ConfigMap as the Job mounts it"
    target.stop()
    assert not target.workdir.exists()


def test_a_context_that_does_not_exist_is_said_so_not_a_missing_namespace():
    """`run --target cluster --context nosuch` used to say the namespace was not found."""
    from conformance.targets.cluster import missing_context

    assert missing_context("dev-aks", ["dev-aks", "kind-pc"]) is None
    assert missing_context("nosuch", ["dev-aks", "kind-pc"]) == (
        "no kubectl context nosuch in the kubeconfig (its contexts: dev-aks, kind-pc): --context NAME or "
        "CONFORMANCE_CONTEXT")
    assert "its contexts: none" in missing_context("nosuch", [])
