"""The Python API: a fresh copy of the dev database for code that is not a pytest test (another
runner, a script, a notebook). The pytest plugin (localenv.pytest_plugin) is built on it.

    from localenv import api

    with api.databases(pool_size=4) as dbs:      # localenv's server, else a throwaway one
        with dbs.database() as db:               # a clone, as the app account
            db.conn.execute("SELECT 1")
            print(db.url, db.jdbc_url)           # for another process
        with dbs.database(role="admin") as db:   # each database() a new clone
            ...
    # every clone made here is dropped; a killed process's are swept by the next one
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg

from localenv.clones import Clone, CloneInfo, Clones
from localenv.pool import Lease, Pool
from localenv.server import session_server

__all__ = ["Clone", "CloneInfo", "Clones", "Database", "Databases", "Pool", "database", "databases"]


@dataclass
class Database:
    """One test's database: its name, URLs, and an open connection of its account."""
    lease: Lease
    _extra: list = field(default_factory=list, repr=False)

    @property
    def clone(self) -> Clone:
        return self.lease.clone

    @property
    def name(self) -> str:
        return self.clone.name

    @property
    def role(self) -> str:
        return self.clone.role

    @property
    def conn(self) -> psycopg.Connection:
        """The account's connection, opened on first use when the pool did not open it."""
        if self.lease.conn is None:
            self.lease.conn = self.clone.connect()
        return self.lease.conn

    @property
    def url(self) -> str:
        """libpq URL without the password: it names the pgpass file that has it (passfile=),
        so another process can use it as it is."""
        return self.clone.url()

    @property
    def jdbc_url(self) -> str:
        """JDBC URL without credentials: give it .user and .password as well."""
        return self.clone.jdbc_url

    @property
    def user(self) -> str:
        return self.clone.endpoint.login(self.role).user

    @property
    def password(self) -> str:
        return self.clone.endpoint.login(self.role).password

    @property
    def waited_s(self) -> float:
        return self.lease.waited_s

    def conninfo(self, role: str | None = None) -> dict:
        return self.clone.conninfo(role)

    def connect(self, role: str | None = None, **kwargs) -> psycopg.Connection:
        """Another connection, of this or another account (admin, readonly)."""
        conn = self.clone.connect(role, **kwargs)
        self._extra.append(conn)
        return conn

    def close(self) -> None:
        for conn in [self.lease.conn, *self._extra]:
            if conn is not None and not conn.closed:
                conn.close()


class Databases:
    """Clones from one pool on one server."""

    def __init__(self, pool: Pool, where: str):
        self.pool = pool
        self.where = where

    def take(self, role: str = "app") -> Database:
        return Database(self.pool.take(role))

    def give_back(self, db: Database) -> None:
        db.close()
        self.pool.give_back(db.lease)

    @contextmanager
    def database(self, role: str = "app"):
        db = self.take(role)
        try:
            yield db
        finally:
            self.give_back(db)


@contextmanager
def databases(pool_size: int = 8, server: str = "auto", progress=None, home=None, sharing: int = 1):
    """A pool of clones on localenv's server (server="auto" or "localenv") or a throwaway
    embedded one ("auto" when none is up, or "embedded"); clones of an earlier process that
    died are swept first, and every clone made here is dropped at the end. sharing: how many
    such pools run at once (xdist's workers), for the server's connections and memory."""
    from localenv.server import room_for

    with session_server(server, progress, home, room=room_for(pool_size, sharing)) as found:
        clones = Clones(found.target, progress, passfile=found.passfile)
        clones.sweep()
        with Pool(clones, size=pool_size, sharing=sharing) as pool:
            yield Databases(pool, found.where)


@contextmanager
def database(role: str = "app", server: str = "auto"):
    """One clone, without a pool."""
    with databases(pool_size=0, server=server) as dbs, dbs.database(role) as db:
        yield db
