"""What live checks use: connections as each account, and the target's scripts and logs."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg

from conformance.manifests import Manifests
from conformance.results import Finding
from conformance.targets.base import Target

SQL_FILES = {"roles": "sql/01-roles.sql", "schema": "sql/02-schema.sql", "data": "sql/03-data.sql",
             "privileges": "sql/04-privileges.sql"}


class LiveContext:
    def __init__(self, target: Target, manifests: Manifests, allow_writes: bool = True):
        self.target = target
        self.manifests = manifests
        self.allow_writes = allow_writes

    def connect(self, role: str = "superuser", dbname: str | None = None, password: str | None = None,
                autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(**self.target.conninfo(role, dbname=dbname, password=password), autocommit=autocommit)

    @contextmanager
    def rolled_back(self, role: str):
        """A transaction as role that is always rolled back: checks leave no data behind."""
        conn = self.connect(role)
        try:
            yield conn
        finally:
            conn.rollback()
            conn.close()

    def query(self, sql: str, params=(), role: str = "superuser"):
        with self.connect(role) as conn:
            return conn.execute(sql, params).fetchall()

    @staticmethod
    def finding(file: str, obj: str, path: str, expected, found) -> Finding:
        return Finding(file=file, obj=obj, path=path, expected=str(expected), found=str(found))
