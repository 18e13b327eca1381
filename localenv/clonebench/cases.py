"""The four ways a test can get a ready database, each as take() (what the test waits for) and
give_back() (its teardown, off the clock), on one server. The test body between them is the
same for all: the service's write path for one request, and a count."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import psycopg

from conformance.drills.load import _request
from conformance.errors import one_line

BODY = "one request of the service's write path (live/statements.py) and a count"


def body(conn: psycopg.Connection) -> None:
    """A small integration test's work on its database."""
    rid = f"bench-{secrets.token_hex(4)}"
    _request(conn, rid, "01000000000", "CUST-BENCH")
    conn.execute("SELECT count(*) FROM product_change.pc_kos_integration_log").fetchone()


@dataclass
class Taken:
    conn: psycopg.Connection
    handle: object


class OurPool:
    """(a) the product_change_db fixture's way: a pool that keeps clones ready."""
    name, label = "pool", "(a) our fixture, with its pool"

    def __init__(self, target, size: int | None = None):
        """size: the plugin's default (as many as the tests, up to its cap) unless given."""
        from localenv.api import Databases
        from localenv.clones import Clones
        from localenv.pool import Pool
        from localenv.pytest_plugin import POOL_CAP

        self.dbs = Databases(Pool(Clones(target), size=POOL_CAP if size is None else size).start(), "bench")

    def take(self) -> Taken:
        db = self.dbs.take()
        return Taken(db.conn, db)

    def give_back(self, taken: Taken) -> None:
        self.dbs.give_back(taken.handle)

    def close(self) -> None:
        self.dbs.pool.close()


class OurClone(OurPool):
    """(b) the same clone, made when the test asks for it."""
    name, label = "clone", "(b) our clone, without a pool"

    def __init__(self, target):
        super().__init__(target, size=0)


class PytestPostgresql:
    """(c) pytest-postgresql 10's `postgresql` fixture, as its factories/client.py does it per
    test: DatabaseJanitor(...).init() (terminate the template's sessions, CREATE DATABASE ...
    TEMPLATE), psycopg.connect; after the test, close and janitor.drop(). Its template is made
    once as its noproc fixture makes it, loaded with the init Job's own script (the same SQL)."""
    name, label = "pytest-postgresql", "(c) pytest-postgresql 10, `postgresql` fixture"

    def __init__(self, target):
        from pytest_postgresql.janitor import DatabaseJanitor

        from conformance import workload

        self.target = target
        info = target.conninfo("superuser", dbname="postgres")
        self.base = dict(user=info["user"], password=info["password"], host=info["host"], port=info["port"])
        self.template = f"pc_bench_ppg_{secrets.token_hex(3)}_tmpl"
        self.template_janitor = DatabaseJanitor(**self.base, dbname=self.template, as_template=True)
        self.template_janitor.init()

        def load(host, port, user, dbname, password, **_):
            proc = target.run_script(workload.schema_init(target.manifests), env={"PGDATABASE": dbname})
            if proc.returncode != 0:
                raise RuntimeError(f"the init script failed on {dbname}: {proc.stderr[-300:]}")

        self.template_janitor.load(load)
        self._janitor = DatabaseJanitor

    def take(self) -> Taken:
        dbname = f"pc_bench_ppg_{secrets.token_hex(4)}"
        janitor = self._janitor(**self.base, dbname=dbname, template_dbname=self.template)
        made = False
        try:
            janitor.init()
            made = True
            conn = psycopg.connect(dbname=dbname, **self.base)
        except psycopg.Error as exc:  # its frames' arguments hold the password: not in pytest's output
            if made:
                janitor.drop()  # the database was made; the connection to it failed
            raise RuntimeError(f"pytest-postgresql's way failed: {one_line(exc)}") from None
        return Taken(conn, janitor)

    def give_back(self, taken: Taken) -> None:
        taken.conn.close()
        taken.handle.drop()

    def close(self) -> None:
        self.template_janitor.drop()


class FreshServer:
    """(d) a new server per test: initdb (from the suite's initdb cache), start as the
    manifests do, the init Job's script."""
    name, label = "initdb", "(d) a fresh initdb and init per test"

    def __init__(self, target):
        self.manifests = target.manifests

    def take(self) -> Taken:
        from conformance.live.runner import apply_schema
        from conformance.targets.native import NativeTarget

        from localenv.server import memory_scratch

        fresh = NativeTarget(self.manifests, scratch=memory_scratch())
        try:
            fresh.start()  # in the try: a start that fails half-way leaves no server or folder
            apply_schema(fresh)
            conn = psycopg.connect(**fresh.conninfo("app"))
        except BaseException:
            fresh.stop()
            raise
        return Taken(conn, fresh)

    def give_back(self, taken: Taken) -> None:
        taken.conn.close()
        taken.handle.stop()

    def close(self) -> None:
        pass


CASES = (OurPool, OurClone, PytestPostgresql, FreshServer)
