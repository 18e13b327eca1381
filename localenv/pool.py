"""Clones made ahead of the tests that take them: threads keep `size` clones ready, each with
an open connection of the default account, so that taking one waits for none while the tests
are slower than a CREATE DATABASE; a clone given back is dropped by those threads, off the
test's clock. close() drops every clone this pool made, also those never given back.

The pool's size is bounded by the server's free connections (each ready clone holds one): several
pools (xdist's workers) and the developer's own service share max_connections."""

from __future__ import annotations

import collections
import dataclasses
import threading
from dataclasses import dataclass

import psycopg

from localenv.clones import Clone, Clones


@dataclass
class Lease:
    clone: Clone
    conn: psycopg.Connection | None  # the default account's, open; None for another account
    waited_s: float = 0.0            # how long take() waited for it


class Pool:
    def __init__(self, clones: Clones, size: int, role: str = "app", makers: int = 2, sharing: int = 1):
        """makers: threads making clones side by side (PostgreSQL 14's CREATE DATABASE waits for
        two checkpoints, which concurrent ones share). sharing: how many pools (xdist workers)
        share the server's free connections."""
        self.clones = clones
        self.size = max(0, size)
        self.sharing = max(1, sharing)
        self._made: set[str] = set()
        self.role = role
        self.makers = max(1, makers)
        self._ready: collections.deque[Lease] = collections.deque()
        self._making = 0
        self._to_drop: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    # Connections left for everything else: the developer's service, psql, this pool's makers.
    SPARE_CONNECTIONS = 20

    def _fit_to_connections(self) -> None:
        with self.clones._admin() as conn:
            most, reserved, used = conn.execute(
                "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,"
                " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')").fetchone()
        free = (most - reserved - used - self.SPARE_CONNECTIONS) // self.sharing - self.makers
        if free < self.size:
            self.clones.progress(f"keeping {max(free, 0)} clones ready, not {self.size}: each holds a connection, "
                                 f"and the server has {most - reserved - used} free for {self.sharing} pool(s)")
            self.size = max(free, 0)

    def start(self, warm: bool = True) -> "Pool":
        """warm: return only once `size` clones are ready (the session's start bears their
        making, not its first tests). A start that fails or is interrupted leaves nothing."""
        try:
            self.clones.ensure_template()  # built once, before any test waits on it
            if self.size:
                self._fit_to_connections()
            for i in range(self.makers if self.size else 0):
                thread = threading.Thread(target=self._work, name=f"localenv-pool-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)
            if warm:
                with self._cond:
                    while len(self._ready) < self.size and self._error is None:
                        self._cond.wait(timeout=1.0)
                    if self._error is not None:
                        raise self._error
        except BaseException:
            self.close()
            raise
        return self

    def _make(self, admin=None) -> Lease:
        clone = self.clones.create(self.role, conn=admin)
        with self._cond:
            self._made.add(clone.name)
        return Lease(clone, clone.connect())

    def _work(self) -> None:
        try:
            with self.clones._admin() as admin:
                while True:
                    with self._cond:
                        while not self._closed and len(self._ready) + self._making >= self.size \
                                and not self._to_drop:
                            self._cond.wait()
                        if self._closed:
                            return
                        fill = len(self._ready) + self._making < self.size
                        # Drops wait while the tests need clones, but not without bound: each
                        # clone holds a copy of the template (disk, or memory on tmpfs).
                        if self._to_drop and (not fill or len(self._to_drop) > self.size):
                            fill, drop = False, self._to_drop.popleft()
                        else:
                            drop = None
                        self._making += fill
                    if fill:
                        try:
                            lease = self._make(admin)
                        finally:
                            with self._cond:
                                self._making -= 1
                        with self._cond:
                            closed = self._closed
                            if not closed:
                                self._ready.append(lease)
                                self._cond.notify_all()
                        if closed:
                            # close() came while this clone was being made (and may have stopped
                            # waiting for this thread): the clone is this thread's to drop.
                            lease.conn.close()
                            self.clones.drop(lease.clone.name, conn=admin)
                            with self._cond:
                                self._made.discard(lease.clone.name)
                            return
                    elif drop:
                        self.clones.drop(drop, conn=admin)
        except BaseException as exc:  # this maker stops; take() makes its own from now on
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def take(self, role: str | None = None) -> Lease:
        """A ready clone (made now when none is and the pool cannot make one in time)."""
        import time

        start = time.perf_counter()
        with self._cond:
            while not self._ready and self.size and any(thread.is_alive() for thread in self._threads):
                self._cond.wait(timeout=1.0)
            lease = self._ready.popleft() if self._ready else None
            self._cond.notify_all()
        if lease is None:
            # None ready: the pool is off (size 0) or its makers stopped on an error; this
            # test's clone is made here, and fails here if it must.
            lease = self._make()
        if role and role != self.role:
            lease.conn.close()
            lease = Lease(dataclasses.replace(lease.clone, role=role), None)
        lease.waited_s = time.perf_counter() - start
        return lease

    def give_back(self, lease: Lease) -> None:
        """The test is done with it: closed now, dropped by the pool's thread."""
        if lease.conn is not None and not lease.conn.closed:
            lease.conn.close()
        with self._cond:
            if any(thread.is_alive() for thread in self._threads):
                self._to_drop.append(lease.clone.name)
                self._cond.notify_all()
                return
        self.clones.drop(lease.clone.name)

    def close(self) -> list[str]:
        """Stop the threads; drop every clone this pool made (ready, taken, given back), and
        only those: another pool of this process keeps its own."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=120)
            if thread.is_alive():  # still inside a CREATE DATABASE: it drops what it made itself
                self.clones.progress(f"{thread.name} still making a clone after 120 s; it drops it when done")
        for lease in self._ready:
            if lease.conn is not None:
                lease.conn.close()
        self._ready.clear()
        dropped = []
        if self._made:
            with self.clones._admin() as admin:
                dropped = [name for name in sorted(self._made) if self.clones.drop(name, conn=admin)]
        self._made.clear()
        return dropped

    def __enter__(self) -> "Pool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
