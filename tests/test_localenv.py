"""localenv as a developer uses it: the command line, on a real PostgreSQL 14, in a home of
its own per test, on a port chosen free at the start of the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from conformance import manifests
from conformance.pg.server import RunAs
from localenv.backend import logins
from localenv.cli import split_psql_args
from localenv.connection import Endpoint, Login
from localenv.settings import Settings
from tests.project import DELETE, ProjectCopy

ROOT = Path(__file__).resolve().parent.parent
INSERT = ("INSERT INTO product_change.pc_kos_integration_log (request_id, integration_type, method, endpoint_url) "
          "VALUES ('{tag}', 'CUSTOMER_INFO', 'GET', '/customers')")
JOB = "postgresql-product-change-schema-init-job.yaml"
COUNT = "SELECT count(*) FROM product_change.pc_kos_integration_log WHERE request_id = '{tag}'"


def secret_passwords() -> set[str]:
    return {login.password for login in logins(manifests.load(ROOT / "manifests"))}


def no_password_in(text: str) -> bool:
    return not any(p and p in text for p in secret_passwords())


# -- the laptop flow ------------------------------------------------------------------------

@pytest.mark.live
def test_up_write_down_up_reset(localenv):
    first = localenv.run("up")
    assert f"127.0.0.1:{localenv.port}" in first.stdout and "created and started" in first.stdout
    for step in ("initialising", "starting", "applying the schema"):
        assert step in first.stderr, f"first up shows no progress line for {step!r}: {first.stderr}"
    assert "jdbc:postgresql://127.0.0.1:%d/product_change_db?currentSchema=product_change" % localenv.port in first.stdout
    for user in ("product_change_app", "product_change_admin", "product_change_readonly"):
        assert f"postgresql://{user}@127.0.0.1:{localenv.port}/product_change_db" in first.stdout
    assert no_password_in(first.stdout + first.stderr)

    assert localenv.sql(INSERT.format(tag="kept") + " RETURNING 1") == "1"
    again = localenv.run("up")
    assert "already running" in again.stdout

    assert "data is kept" in localenv.run("down").stdout
    assert localenv.servers() == []
    assert localenv.run("status", ok=False).returncode == 3

    warm = localenv.run("up")
    assert "initialising" not in warm.stderr and "applying" not in warm.stderr
    assert localenv.sql(COUNT.format(tag="kept")) == "1"

    refused = localenv.run("reset", ok=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert localenv.sql(COUNT.format(tag="kept")) == "1"

    localenv.run("reset", "--yes")
    assert localenv.sql(COUNT.format(tag="kept")) == "0"
    assert localenv.sql("SELECT count(*) FROM product_change.pc_circuit_breaker_state") == "3"


@pytest.mark.live
def test_status_reports_port_data_and_readiness(localenv):
    localenv.run("up")
    status = localenv.run("status")
    assert f"running on 127.0.0.1:{localenv.port}" in status.stdout
    assert "ready (readinessProbe exit 0)" in status.stdout
    assert str(localenv.datadir) in status.stdout and " MB)" in status.stdout


@pytest.mark.live
def test_accounts_have_their_privileges_through_psql(localenv):
    localenv.run("up")
    assert localenv.sql("SELECT current_user", role="readonly") == "product_change_readonly"
    denied = localenv.run("psql", "--as", "readonly", "-c", INSERT.format(tag="ro"), ok=False)
    assert denied.returncode != 0 and "permission denied" in denied.stderr


@pytest.mark.live
def test_env_prints_passwords_only_when_asked(localenv):
    localenv.run("up")
    env = localenv.run("env", "--as", "admin").stdout
    assert "export PGUSER=product_change_admin" in env
    assert not no_password_in(env)  # the password is there: the user asked for it
    exported = dict(line[len("export "):].split("=", 1) for line in env.splitlines())
    # The embedded binaries' psql: always there, so the check below always runs.
    from conformance.pg.binaries import locate

    query = subprocess.run([str(locate().tool("psql")), "-Atc", "SELECT current_user"], capture_output=True,
                           text=True, env={**os.environ, **{k: v.strip("'") for k, v in exported.items()}})
    assert query.stdout.strip() == "product_change_admin", query.stderr
    for command in (("status",), ("logs", "-n", "50")):
        assert no_password_in(localenv.run(*command, ok=False).stdout)


@pytest.mark.live
def test_pgpass_lets_the_printed_url_connect(localenv):
    import psycopg

    up = localenv.run("up").stdout
    url = next(word for word in up.split() if word.startswith("postgresql://product_change_app@"))
    os.environ["PGPASSFILE"] = str(localenv.home / "pgpass")
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW search_path").fetchone()[0] == "product_change"
    finally:
        del os.environ["PGPASSFILE"]
    assert oct((localenv.home / "pgpass").stat().st_mode & 0o777) == "0o600"


@pytest.mark.live
def test_backup_and_restore_round_trip(localenv):
    localenv.run("up")
    localenv.sql(INSERT.format(tag="before"))
    backup = localenv.run("backup")
    dump = Path(backup.stdout.split("backup written: ")[1].split(" (")[0])
    assert dump.is_file() and dump.parent == localenv.home / "backups"
    localenv.sql(INSERT.format(tag="after"))

    localenv.run("restore", str(dump))
    assert localenv.sql(COUNT.format(tag="before")) == "1"
    assert localenv.sql(COUNT.format(tag="after")) == "0"
    saved = list((localenv.home / "backups" / "before-restore").glob("*.dump"))
    assert len(saved) == 1, "restore saves the current data first"
    # privileges came back with the objects
    assert localenv.sql("SELECT count(*) FROM product_change.pc_circuit_breaker_state", role="readonly") == "3"


@pytest.mark.live
def test_restore_refuses_a_file_that_is_not_a_dump(localenv, tmp_path):
    localenv.run("up")
    bogus = tmp_path / "notes.dump"
    bogus.write_text("not a dump")
    proc = localenv.run("restore", str(bogus), ok=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a pg_dump custom-format archive" in proc.stderr
    assert not (localenv.home / "backups" / "before-restore").exists()


# -- faults ---------------------------------------------------------------------------------

@pytest.mark.live
def test_busy_preferred_port_moves_to_the_next_free_one(localenv):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", localenv.port))
        squatter.listen()
        up = localenv.run("up")
        assert f"({localenv.port} is in use)" in up.stdout
        port = int(up.stdout.split("127.0.0.1:")[1].split()[0])
        assert port != localenv.port
        assert localenv.sql("SELECT 1") == "1"
        localenv.run("down")

        strict = localenv.run("--port", str(localenv.port), "up", ok=False)
        assert strict.returncode == 2 and len(strict.stderr.splitlines()) == 1
        assert f"port {localenv.port} on 127.0.0.1 is in use by another program" in strict.stderr


@pytest.mark.live
def test_stale_postmaster_pid_from_a_reused_pid_is_cleared(localenv):
    localenv.run("up")
    localenv.sql(INSERT.format(tag="stale"))
    localenv.run("down")
    # After a reboot the old PID may belong to another process of the server's account;
    # PostgreSQL then refuses to start ("lock file already exists").
    squatter = subprocess.Popen(["sleep", "300"], **RunAs.for_this_process().popen_kwargs())
    try:
        pidfile = localenv.datadir / "postmaster.pid"
        pidfile.write_text(f"{squatter.pid}\n{localenv.datadir}\n0\n{localenv.port}\n/tmp\n127.0.0.1\n")
        up = localenv.run("up")
        # Cleared by the StatefulSet's init container, run as the kubelet would before the server.
        assert f"init container clear-stale-pid: removing a stale postmaster.pid (PID {squatter.pid} is sleep" in up.stderr
        assert localenv.sql(COUNT.format(tag="stale")) == "1"
        assert "running on" in localenv.run("status").stdout
    finally:
        squatter.kill()
        squatter.wait()


def kill_server(localenv) -> None:
    """kill -9 of the postmaster and all its processes at once, as an OOM kill of the container."""
    postmaster = psutil.Process(int((localenv.datadir / "postmaster.pid").read_text().split()[0]))
    processes = [postmaster, *postmaster.children()]
    for proc in processes:
        proc.kill()
    psutil.wait_procs(processes, timeout=30)


@pytest.mark.live
def test_a_killed_server_comes_back_with_its_data(localenv):
    localenv.run("up")
    # A durable commit: under the plan's synchronous_commit=off, a commit returns before its
    # WAL is written, and a killed server loses the last ~0.6 s of commits (docs/operations.md).
    localenv.sql("SET synchronous_commit = on; " + INSERT.format(tag="crash"))
    kill_server(localenv)
    assert localenv.run("status", ok=False).returncode == 3
    localenv.run("up")
    assert localenv.sql(COUNT.format(tag="crash")) == "1"


@pytest.fixture
def wide_window(tmp_path) -> ProjectCopy:
    """The manifests with the WAL writer's pause at its maximum (10 s): a commit that does
    not wait for its WAL is then certainly lost to a kill within the second after it, which
    makes the loss this guards against happen every time instead of most times."""
    project = ProjectCopy(tmp_path / "project")
    project.conf("synchronous_commit = off", "synchronous_commit = off\nwal_writer_delay = 10000")
    return project


@pytest.mark.live
@pytest.mark.parametrize("durable", [True, False], ids=["init-commits-durably", "durable-commit-removed"])
def test_a_kill_right_after_the_first_up_keeps_the_init(localenv, wide_window, durable):
    if not durable:
        wide_window.set(JOB, "Job", ("spec", "template", "spec", "containers", 0, "env", 4), DELETE)
        assert "synchronous_commit" not in (wide_window.manifests / JOB).read_text()
    flags = ("--manifests", str(wide_window.manifests))
    localenv.run(*flags, "up")
    kill_server(localenv)
    again = localenv.run(*flags, "up")
    assert localenv.sql("SELECT count(*) FROM product_change.pc_circuit_breaker_state") == "3"
    repaired = "the init's work was missing" in again.stdout
    if durable:
        assert not repaired, f"the init did not survive the kill:\n{again.stdout}{again.stderr}"
    else:
        # Without the durable commit the kill undoes the init; `up` sees it and re-applies.
        assert repaired and "product_change_app cannot log in" in again.stdout, again.stdout + again.stderr


@pytest.mark.live
def test_a_kill_right_after_restore_keeps_the_restored_data(localenv, wide_window):
    # pg_restore --clean drops tables, and a transaction that drops relations always commits
    # synchronously: this holds even without restore's own synchronous_commit=on, which is
    # there for a restore that drops nothing. The test holds the user's promise, not the flag.
    flags = ("--manifests", str(wide_window.manifests))
    localenv.run(*flags, "up")
    localenv.sql(INSERT.format(tag="dumped"))
    dump = localenv.run(*flags, "backup").stdout.split("backup written: ")[1].split(" (")[0]
    localenv.sql("SET synchronous_commit = on; DELETE FROM product_change.pc_kos_integration_log", role="admin")
    localenv.run(*flags, "restore", dump)
    kill_server(localenv)
    localenv.run(*flags, "up")
    assert localenv.sql(COUNT.format(tag="dumped")) == "1"


@pytest.mark.live
def test_data_of_another_major_version_is_refused_and_kept(localenv):
    localenv.run("up")
    localenv.run("down")
    (localenv.datadir / "PG_VERSION").write_text("15\n")
    files_before = sorted(p.name for p in localenv.datadir.iterdir())
    up = localenv.run("up", ok=False)
    assert up.returncode == 2 and len(up.stderr.splitlines()) == 1
    assert "holds PostgreSQL 15 data" in up.stderr and "Traceback" not in up.stderr
    assert sorted(p.name for p in localenv.datadir.iterdir()) == files_before
    assert "PostgreSQL 15 data" in localenv.run("status", ok=False).stdout


@pytest.mark.live
@pytest.mark.parametrize("moment", ["initialising", "starting", "applying"])
def test_ctrl_c_during_first_up_leaves_nothing_running_and_up_recovers(localenv, moment):
    proc = localenv.popen("up")
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if moment in line:
            proc.send_signal(signal.SIGINT)
            break
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert localenv.servers() == []
    localenv.run("up")
    assert localenv.sql("SELECT count(*) FROM product_change.pc_circuit_breaker_state") == "3"


@pytest.mark.live
def test_bad_input_gets_one_line_and_exit_2(localenv):
    for args, env, message in [
        (("--port", "0", "up"), {}, "--port 0 is not a port number"),
        (("up",), {"LOCALENV_PORT": "x"}, "LOCALENV_PORT='x' is not a port number"),
        (("--manifests", "/nonexistent", "up"), {}, "/nonexistent"),
        (("psql",), {}, "not running. Fix: localenv up"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "localenv", *args], cwd=ROOT, env={**localenv.env, **env},
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)


# -- units ----------------------------------------------------------------------------------

def test_endpoint_urls_and_pgpass_escape_what_needs_it():
    ep = Endpoint("127.0.0.1", 6543, (Login("app", "a:b", "p@ss:w\\rd"),))
    assert ep.libpq_url("app") == ("postgresql://a%3Ab@127.0.0.1:6543/product_change_db"
                                   "?options=-csearch_path%3Dproduct_change")
    assert "p%40ss%3Aw%5Crd" in ep.libpq_url("app", with_password=True)
    assert ep.pgpass_text().splitlines()[0] == "127.0.0.1:6543:*:a\\:b:p@ss\\:w\\\\rd"  # clones too
    assert "p@ss" not in ep.describe(Path("/x/pgpass")) and "p@ss" not in repr(ep)
    assert ep.variables("app", Path("/x/pgpass"), with_password=True)["SPRING_DATASOURCE_PASSWORD"] == "p@ss:w\\rd"


def test_psql_arguments_pass_through():
    assert split_psql_args(["psql", "--as", "admin", "-c", "SELECT 1"]) == (["psql", "--as", "admin"], ["-c", "SELECT 1"])
    assert split_psql_args(["--port", "7", "psql", "--", "-l"]) == (["--port", "7", "psql"], ["-l"])
    assert split_psql_args(["status"]) == (["status"], [])


def test_settings_default_home_and_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("LOCALENV_HOME", raising=False)
    monkeypatch.delenv("LOCALENV_PORT", raising=False)
    default = Settings.resolve()
    assert default.preferred_port == 5432 and default.port is None
    assert "product-change-db" in str(default.home)
    monkeypatch.setenv("LOCALENV_HOME", str(tmp_path))
    monkeypatch.setenv("LOCALENV_PORT", "6000")
    chosen = Settings.resolve()
    assert chosen.home == tmp_path and chosen.preferred_port == 6000 and chosen.backups == tmp_path / "backups"
