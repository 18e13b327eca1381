"""A fresh, isolated copy of the dev database per test (issue 25): the clones, their template,
the pool, the pytest plugin, localenv's clone/clones/drop/migrate/destroy, on a real server."""

from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from conformance import manifests
from conformance.live.context import LiveContext
from conformance.targets.native import NativeTarget
from localenv.clones import CLONE_PREFIX, KEEP_TEMPLATES, TEMPLATE_PREFIX, Clones
from localenv.pool import Pool
from tests.project import ROOT, ProjectCopy

M = manifests.load(ROOT / "manifests")
SCHEMA = "product_change"
INSERT = (f"INSERT INTO {SCHEMA}.pc_kos_integration_log (request_id, integration_type, method, endpoint_url) "
          "VALUES (%s, 'CUSTOMER_INFO', 'GET', '/customers')")
COUNT = f"SELECT count(*) FROM {SCHEMA}.pc_kos_integration_log WHERE request_id = %s"


@pytest.fixture(scope="module")
def server():
    from conformance.live.runner import apply_schema

    with NativeTarget(M) as target:
        apply_schema(target)  # the dev database, with the developer's rows to come
        yield target


def databases(target, prefix: str) -> list[str]:
    with psycopg.connect(**target.conninfo("superuser", dbname="postgres")) as conn:
        return [n for (n,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1",
                                           (prefix.replace("_", r"\_") + "%",))]


@pytest.mark.live
def test_a_write_in_one_clone_is_invisible_in_another_and_in_the_dev_database(server):
    clones = Clones(server)
    a, b = clones.create(), clones.create()
    try:
        with a.connect() as conn:
            conn.execute(INSERT, ("only-in-a",))
        with a.connect() as conn:
            assert conn.execute(COUNT, ("only-in-a",)).fetchone()[0] == 1
        with b.connect() as conn:
            assert conn.execute(COUNT, ("only-in-a",)).fetchone()[0] == 0
        with psycopg.connect(**server.conninfo("app")) as conn:
            assert conn.execute(COUNT, ("only-in-a",)).fetchone()[0] == 0
        # The seed rows came along, and the accounts find their schema as on the cluster.
        with b.connect("readonly") as conn:
            assert conn.execute(f"SELECT count(*) FROM {SCHEMA}.pc_circuit_breaker_state").fetchone()[0] == 3
            assert conn.execute("SHOW search_path").fetchone()[0] == SCHEMA
    finally:
        clones.drop(a.name)
        clones.drop(b.name)
    assert databases(server, CLONE_PREFIX) == []


@pytest.mark.live
def test_a_list_setting_of_the_template_reaches_the_clone_as_a_list(server):
    """A search_path of two schemas (one needing quotes) comes to the clone as two, not as one
    schema named after the whole text."""
    clones = Clones(server)
    template = clones.ensure_template()
    user = server.conninfo("readonly")["user"]
    with psycopg.connect(**server.conninfo("superuser", dbname="postgres"), autocommit=True) as su:
        su.execute(f'ALTER ROLE {user} IN DATABASE {template} SET search_path = {SCHEMA}, "my schema", public')
        try:
            clone = clones.create()
            try:
                with clone.connect("readonly") as conn:
                    assert conn.execute("SHOW search_path").fetchone()[0] == f'{SCHEMA}, "my schema", public'
            finally:
                clones.drop(clone.name)
        finally:
            su.execute(f"ALTER ROLE {user} IN DATABASE {template} SET search_path = {SCHEMA}")


@pytest.mark.live
def test_the_app_account_cannot_delete_in_a_clone(server):
    clones = Clones(server)
    clone = clones.create()
    try:
        with clone.connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            conn.execute(f"DELETE FROM {SCHEMA}.pc_kos_integration_log")
        assert refused.value.sqlstate == "42501" and "pc_kos_integration_log" in str(refused.value)
        # Not a refusal to connect: the app account reads and writes there.
        with clone.connect() as conn:
            conn.execute(INSERT, ("app-writes",))
        # The database-level grants are the dev database's: PUBLIC may not connect.
        with psycopg.connect(**server.conninfo("superuser", dbname="postgres")) as conn:
            acls = dict(conn.execute("SELECT datname, datacl::text FROM pg_database WHERE datname IN (%s, %s)",
                                     (clone.name, server.database)).fetchall())
        assert acls[clone.name] == acls[server.database], acls
        assert not any(entry.startswith("=") for entry in acls[clone.name].strip("{}").split(",")), acls
    finally:
        clones.drop(clone.name)


@pytest.mark.live
def test_the_privilege_check_passes_on_a_clone(server):
    """Plan 9.2's live checks (the privilege table, each account's attributes and settings, what
    the app and read-only accounts may do, default privileges, ownership), run against a clone
    instead of the dev database."""
    import copy

    from conformance.live.runner import run_checks
    from conformance.results import Status

    clones = Clones(server)
    clone = clones.create()
    try:
        on_clone = copy.copy(server)
        on_clone.database = clone.name
        checks = {"live-9.2-privilege-table", "live-9.2-role-attributes", "live-9.2-app-privileges",
                  "live-9.2-readonly-privileges", "live-9.2-default-privileges", "live-9.2-admin-owns"}
        results = run_checks(LiveContext(on_clone, M), only=checks)
        assert len(results) == len(checks)
        assert all(r.status is Status.PASSED for r in results), [r.lines() or r.message for r in results]
    finally:
        clones.drop(clone.name)


@pytest.mark.live
def test_a_sql_change_reaches_the_next_clone(server, tmp_path):
    clones = Clones(server)
    old_template = clones.ensure_template()
    copy = ProjectCopy(tmp_path)
    migration = copy.sql / "migrations" / "0001-add-note.sql"
    migration.write_text(f"ALTER TABLE {SCHEMA}.pc_kos_integration_log ADD COLUMN IF NOT EXISTS note text;\n")
    subprocess.run([sys.executable, "-m", "conformance", "schema-configmap", "--sql", str(copy.sql), "--manifests",
                    str(copy.manifests)], cwd=ROOT, check=True, capture_output=True)
    changed = copy_target(server, manifests.load(copy.manifests))
    newer = Clones(changed)
    assert newer.template != old_template
    # Templates of three more schemas, older than old_template: beyond the newest KEEP_TEMPLATES
    # (the new schema's and the two newest others), they go when the new template is built.
    fakes = [f"{TEMPLATE_PREFIX}older{i}" for i in range(3)]
    with psycopg.connect(**server.conninfo("superuser", dbname="postgres"), autocommit=True) as conn:
        for i, name in enumerate(fakes):
            conn.execute(f"CREATE DATABASE {name} IS_TEMPLATE true")
            conn.execute(f"COMMENT ON DATABASE {name} IS 'built 2020-01-0{i + 1}T00:00:00+00:00'")
    clone = newer.create()
    try:
        with clone.connect() as conn:
            assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                                "'pc_kos_integration_log' AND column_name = 'note'").fetchone()[0] == 1
        # The older schema's template stays for a while (another checkout on the same server
        # may still use it): the newest three are kept, the two oldest fakes dropped.
        assert KEEP_TEMPLATES == 3
        assert set(databases(server, TEMPLATE_PREFIX)) == {old_template, fakes[2], newer.template}
    finally:
        newer.drop(clone.name)
        newer.drop_templates()


def copy_target(target, loaded):
    import copy

    other = copy.copy(target)
    other.manifests = loaded
    return other


@pytest.mark.live
def test_clones_of_a_dead_owner_or_past_their_time_are_swept(server):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from conformance.targets.docker_janitor import owner

    mine = Clones(server)
    orphan = Clones(server, owner=f"{owner().split('/')[0]}/{dead.pid}/1").create()
    expired = Clones(server, ttl=timedelta(seconds=1)).create()
    kept = mine.create()
    try:
        swept = Clones(server, owner="someone/else").sweep(now=datetime.now(timezone.utc) + timedelta(seconds=5))
        assert set(swept) == {orphan.name, expired.name}, swept
        assert databases(server, CLONE_PREFIX) == [kept.name]
    finally:
        mine.drop_all()


@pytest.mark.live
def test_a_clone_being_made_is_never_swept_but_a_killed_makers_is(server):
    """Between CREATE DATABASE and the comment naming its owner a clone has no owner; a sweep
    may drop such a clone only when no maker holds the lock (the maker was killed)."""
    from localenv.clones import LOCK_KEY

    half = f"{CLONE_PREFIX}halfmade"
    with psycopg.connect(**server.conninfo("superuser", dbname="postgres"), autocommit=True) as maker:
        maker.execute(f"CREATE DATABASE {half}")
        maker.execute("SELECT pg_advisory_lock_shared(%s)", (LOCK_KEY,))  # a maker at work
        assert half not in Clones(server).sweep(wait_s=0.2)
        assert databases(server, CLONE_PREFIX) == [half]
        maker.execute("SELECT pg_advisory_unlock_shared(%s)", (LOCK_KEY,))  # it was killed
        assert Clones(server).sweep() == [half]
    assert databases(server, CLONE_PREFIX) == []


@pytest.mark.live
def test_a_sweep_sees_the_clone_a_killed_makers_session_was_still_creating(server):
    """A maker killed inside CREATE DATABASE leaves its session running until the statement
    ends; the clone shows in no listing before that. A sweep that listed first, found nothing
    ownerless and skipped the lock left it behind (CI, test_a_failed_or_killed_session_...)."""
    import threading

    from localenv.clones import LOCK_KEY

    half = f"{CLONE_PREFIX}latemade"
    swept: list = []
    with psycopg.connect(**server.conninfo("superuser", dbname="postgres"), autocommit=True) as maker:
        maker.execute("SELECT pg_advisory_lock_shared(%s)", (LOCK_KEY,))  # the session is in its CREATE
        sweeper = threading.Thread(target=lambda: swept.extend(Clones(server, owner="someone/else").sweep(wait_s=60)))
        sweeper.start()
        try:
            with psycopg.connect(**server.conninfo("superuser", dbname="postgres"), autocommit=True) as watch:
                deadline = time.monotonic() + 60
                while not watch.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                        "AND mode = 'ExclusiveLock'").fetchone() and time.monotonic() < deadline \
                        and sweeper.is_alive():
                    time.sleep(0.05)  # polling the server's lock table: the sweep is queued behind the maker
            maker.execute(f"CREATE DATABASE {half}")  # committed only now, after the sweep began
            maker.execute("SELECT pg_advisory_unlock_shared(%s)", (LOCK_KEY,))  # the session ends
        finally:
            sweeper.join(timeout=90)
    try:
        assert swept == [half]
        assert databases(server, CLONE_PREFIX) == []
    finally:
        with psycopg.connect(**server.conninfo("superuser", dbname="postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {half}")


@pytest.mark.live
def test_a_pool_drops_only_its_own_clones_and_fits_the_free_connections(server):
    clones = Clones(server)
    with Pool(clones, size=1) as first:
        mine = first.take()
        with Pool(clones, size=1) as second:
            second.take()
        # the second pool's end dropped its clones, not the first's (same process, same owner)
        with mine.clone.connect() as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1
        crowded = Pool(clones, size=32, sharing=40)  # 40 workers share the server's connections
        crowded.start()
        try:
            with psycopg.connect(**server.conninfo("superuser", dbname="postgres")) as conn:
                most, reserved = conn.execute("SELECT current_setting('max_connections')::int, "
                                              "current_setting('superuser_reserved_connections')::int").fetchone()
            # Each ready clone holds a connection: a 40th of what is free (at most, before the
            # connections in use), less the makers', is none here (100 connections).
            at_most = max(0, (most - reserved - Pool.SPARE_CONNECTIONS) // 40 - crowded.makers)
            assert crowded.size == at_most == 0, (crowded.size, at_most)
        finally:
            crowded.close()
    assert databases(server, CLONE_PREFIX) == []


@pytest.mark.live
def test_a_clones_url_works_in_another_process_as_printed(server, tmp_path):
    """The URL names a pgpass file (passfile=) rather than carrying the password."""
    from localenv.backend import logins
    from localenv.connection import Endpoint, write_pgpass

    passfile = tmp_path / "pgpass"
    write_pgpass(Endpoint(server.host, server.port, logins(M)), passfile)
    clones = Clones(server, passfile=str(passfile))
    clone = clones.create()
    try:
        url = clone.url()
        assert "passfile=" in url and clone.endpoint.login("app").password not in url
        psql = subprocess.run([str(server.binaries.tool("psql")), url, "-qAtc", "SELECT current_user"],
                              env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=60)
        assert psql.stdout.strip() == "product_change_app", psql.stderr
    finally:
        clones.drop(clone.name)


@pytest.mark.live
def test_the_pool_has_clones_ready_and_drops_every_one_it_made(server):
    with Pool(Clones(server), size=2) as pool:
        deadline = time.monotonic() + 60
        while len(pool._ready) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the pool's own queue, not a server state
        lease = pool.take()
        assert lease.conn.execute("SELECT current_user").fetchone()[0] == "product_change_app"
        assert lease.waited_s < 0.05, "a ready clone is handed out without waiting for one to be made"
        other = pool.take("admin")
        assert other.conn is None and other.clone.role == "admin"
        pool.give_back(lease)
        # other is never given back: close() drops it too
    assert databases(server, CLONE_PREFIX) == []


# -- the pytest plugin, as a user's project uses it -------------------------------------------

TINY = textwrap.dedent('''
    import os
    import psycopg
    import pytest


    def server_seen(db):
        """Which server gave the clone (every test: xdist hands each worker two first)."""
        if "SERVERS_SEEN" in os.environ:
            with open(os.environ["SERVERS_SEEN"], "a") as servers:
                servers.write(f"{db.conn.info.port}\\n")


    def test_app_account_in_its_own_clone(product_change_db):
        user, name = product_change_db.conn.execute("SELECT current_user, current_database()").fetchone()
        assert user == "product_change_app" and name == product_change_db.name
        with open(os.environ["CLONES_SEEN"], "a") as seen:
            seen.write(name + "\\n")
        server_seen(product_change_db)


    @pytest.mark.product_change_db(role="readonly")
    def test_readonly_cannot_write(product_change_db):
        server_seen(product_change_db)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            product_change_db.conn.execute("DELETE FROM pc_kos_integration_log")


    @pytest.mark.parametrize("i", range(6))
    def test_each_test_sees_only_its_own_rows(product_change_db, i):
        conn = product_change_db.conn
        conn.execute("INSERT INTO pc_kos_integration_log (request_id, integration_type, method, endpoint_url) "
                     "VALUES (%s, 'CUSTOMER_INFO', 'GET', '/x')", (f"t{i}",))
        assert conn.execute("SELECT count(*) FROM pc_kos_integration_log").fetchone()[0] == 1
        with open(os.environ["CLONES_SEEN"], "a") as seen:
            seen.write(product_change_db.name + "\\n")
        server_seen(product_change_db)
''')


def test_a_failed_connection_shows_no_password_in_pytest_output(tmp_path):
    """pytest prints the arguments of a failing traceback's frames: the connection's dict (its
    password) must be in none of them."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    (tmp_path / "test_connect.py").write_text(textwrap.dedent(f'''
        import os

        from localenv.clones import connect

        def test_connect():
            connect({{"host": "127.0.0.1", "port": {port}, "user": "u", "password": os.environ["SECRET"],
                     "dbname": "d", "connect_timeout": 5}})
    '''))
    proc = _pytest(tmp_path, "-l", "--tb=long", "-p", "no:localenv", env={"SECRET": "S3CRETPW"})
    assert proc.returncode == 1 and "cannot connect as u@127.0.0.1" in proc.stdout, proc.stdout[-2000:]
    assert "S3CRETPW" not in proc.stdout + proc.stderr


def _pytest(folder: Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=folder,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


@pytest.mark.live
@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_the_plugin_in_a_project_outside_this_one(tmp_path, localenv, workers):
    """Only the documented fixture, by entry point; on localenv's server, each test its own clone,
    nothing left after the session, also with xdist's two workers."""
    localenv.run("up")
    (tmp_path / "test_tiny.py").write_text(TINY)
    seen = tmp_path / "seen.txt"
    # --localenv-server localenv: localenv's server or an error, never a throwaway one instead.
    proc = _pytest(tmp_path, *workers, "--localenv-server", "localenv",
                   env={"LOCALENV_HOME": str(localenv.home), "CLONES_SEEN": str(seen)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "8 passed" in proc.stdout
    names = seen.read_text().split()
    assert len(names) == 7 and len(set(names)) == 7, "each test had a database of its own"
    listed = json.loads(localenv.run("clones", "--json").stdout)
    assert listed == [], "the session dropped its clones"
    assert localenv.sql("SELECT count(*) FROM product_change.pc_kos_integration_log WHERE request_id LIKE 't_'") == "0"


@pytest.mark.live
def test_the_plugin_without_localenv_starts_a_throwaway_server_per_worker(tmp_path):
    """No localenv server for this home: each xdist worker starts an embedded one, and nothing
    of them is left (no server, no scratch folder)."""

    home = tmp_path / "no-localenv-here"
    (tmp_path / "test_tiny.py").write_text(TINY)
    seen, servers = tmp_path / "seen.txt", tmp_path / "servers.txt"
    # Where the throwaway servers keep their data (LOCALENV_SCRATCH): outside tmp_path, whose
    # parents the server's account (nobody, when root runs this) may not enter.
    scratch = Path(tempfile.mkdtemp(prefix="pc-scratch-"))
    scratch.chmod(0o711)
    try:
        proc = _pytest(tmp_path, "-n", "2", env={"LOCALENV_HOME": str(home), "CLONES_SEEN": str(seen),
                                                 "SERVERS_SEEN": str(servers), "LOCALENV_SCRATCH": str(scratch)})
        assert proc.returncode == 0 and "8 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert len(set(seen.read_text().split())) == 7
        assert len(set(servers.read_text().split())) == 2, "each of the two workers had a server of its own"
        assert list(scratch.iterdir()) == [], "a throwaway server's data outlived its session"
        assert _postgres_processes_under(scratch) == [], "a throwaway server outlived its session"
        assert not home.exists(), "localenv's home is only read, never made, by the plugin"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _postgres_processes_under(folder: Path) -> list[int]:
    import psutil

    found = []
    for p in psutil.process_iter(["name", "cmdline", "status"]):
        if p.info["name"] == "postgres" and p.info["status"] != psutil.STATUS_ZOMBIE \
                and any(str(folder) in arg for arg in p.info["cmdline"] or ()):
            found.append(p.pid)
    return found


@pytest.mark.parametrize("given,wanting,workers,size", [
    (None, 200, 1, 32), (None, 10, 1, 10), (None, 200, 2, 32), (None, 40, 4, 10), ("0", 200, 1, 0), ("5", 200, 1, 5),
])
def test_the_pool_is_sized_to_the_tests_that_want_a_clone(given, wanting, workers, size):
    from types import SimpleNamespace

    from localenv import pytest_plugin

    config = SimpleNamespace(getoption=lambda name: given, getini=lambda name: "auto",
                             workerinput={"workercount": workers})
    items = [SimpleNamespace(fixturenames=("product_change_db",))] * wanting + [SimpleNamespace(fixturenames=())] * 3
    pytest_plugin.pytest_collection_modifyitems(None, config, items)
    assert pytest_plugin._pool_size(config) == size


def test_a_bad_pool_size_is_a_usage_error():
    from types import SimpleNamespace

    from localenv import pytest_plugin

    for bad in ("many", "-1"):
        config = SimpleNamespace(getoption=lambda name, bad=bad: bad, getini=lambda name: "auto")
        with pytest.raises(pytest.UsageError, match="localenv"):
            pytest_plugin._pool_size(config)


@pytest.mark.live
def test_a_failed_or_killed_session_leaves_no_clone(tmp_path, localenv):
    localenv.run("up")
    (tmp_path / "test_session.py").write_text(textwrap.dedent('''
        import os, time
        def test_fails(product_change_db):
            assert False, "a failing test"
        def test_hangs(product_change_db):
            open(os.environ["READY"], "w").write(product_change_db.name)
            time.sleep(600)
    '''))
    env = {"LOCALENV_HOME": str(localenv.home), "READY": str(tmp_path / "ready")}
    failed = _pytest(tmp_path, "-k", "not hangs", "--localenv-server", "localenv", env=env)
    assert failed.returncode == 1 and "a failing test" in failed.stdout
    assert json.loads(localenv.run("clones", "--json").stdout) == []

    killed = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "hangs",
                               "--localenv-server", "localenv"],
                              cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "ready").exists() and time.monotonic() < deadline and killed.poll() is None:
            time.sleep(0.1)  # polling for the test's own file: it is running
        assert (tmp_path / "ready").exists(), "the hanging test never started"
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
    # The pool's clones are there; the next command sweeps them (their owner is gone).
    listing = localenv.run("clones", "--json")
    assert json.loads(listing.stdout) == [], listing.stdout
    assert "swept pc_clone_" in listing.stderr


# -- localenv's commands ------------------------------------------------------------------

@pytest.mark.live
def test_localenv_clone_prints_urls_that_work_and_drop_removes_it(localenv):
    localenv.run("up")
    made = json.loads(localenv.run("clone", "--json").stdout)
    assert made["name"].startswith(CLONE_PREFIX) and made["user"] == "product_change_app"
    assert made["jdbc_url"] == f"jdbc:postgresql://127.0.0.1:{localenv.port}/{made['name']}?currentSchema=product_change"
    # The libpq URL works as printed: localenv's pgpass has the password for every database.
    url = subprocess.run([str(localenv_psql(localenv)), made["url"], "-qAtc", "SELECT current_database()"],
                         env={**localenv.env, "PGPASSFILE": str(localenv.home / "pgpass")}, capture_output=True,
                         text=True, timeout=60)
    assert url.stdout.strip() == made["name"], url.stderr
    text = localenv.run("clone", "--as", "admin")
    assert "product_change_admin" in text.stdout and "PGPASSWORD=" in text.stdout  # asked for: shown
    listed = localenv.run("clones").stdout
    assert made["name"] in listed and "admin" in listed
    assert localenv.run("drop", made["name"]).stdout.strip() == f"dropped {made['name']}"
    missing = localenv.run("drop", made["name"], ok=False)
    assert missing.returncode == 1 and "no clone named" in missing.stderr
    assert "dropped 1 clones" in localenv.run("drop", "--all").stdout


def localenv_psql(localenv) -> Path:
    from conformance.pg.binaries import locate

    return Path(locate().tool("psql"))


@pytest.mark.live
def test_up_applies_a_changed_sql_after_a_backup_and_keeps_the_rows(localenv, tmp_path):
    copy = ProjectCopy(tmp_path)
    localenv.run("--manifests", str(copy.manifests), "up")
    localenv.sql(INSERT.replace("%s", "'mine'"))
    (copy.sql / "migrations" / "0001-add-note.sql").write_text(
        f"ALTER TABLE {SCHEMA}.pc_kos_integration_log ADD COLUMN IF NOT EXISTS note text;\n")
    subprocess.run([sys.executable, "-m", "conformance", "schema-configmap", "--sql", str(copy.sql), "--manifests",
                    str(copy.manifests)], cwd=ROOT, check=True, capture_output=True)
    up = localenv.run("--manifests", str(copy.manifests), "up")
    assert "sql/ changed" in up.stdout and "added column product_change.pc_kos_integration_log.note" in up.stdout, up.stdout
    assert "03m0001-add-note.sql" in up.stdout
    backups = list((localenv.home / "backups" / "before-migrate").glob("*.dump"))
    assert len(backups) == 1
    assert localenv.sql(COUNT.replace("%s", "'mine'")) == "1", "the developer's rows stay"
    assert localenv.sql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'") == "1"
    again = localenv.run("--manifests", str(copy.manifests), "up")
    assert "sql/ changed" not in again.stdout


@pytest.mark.live
def test_destroy_removes_everything_but_the_backups(localenv):
    localenv.run("up")
    localenv.run("clone")
    localenv.run("backup")
    refused = localenv.run("destroy", ok=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr and len(refused.stderr.splitlines()) == 1
    done = localenv.run("destroy", "--yes")
    assert "kept the backups" in done.stdout
    assert localenv.servers() == []
    assert sorted(p.name for p in localenv.home.iterdir()) == ["backups"]
    assert localenv.run("status", ok=False).returncode == 3
