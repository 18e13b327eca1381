"""Clones made ahead of the tests that take them: a thread keeps `size` clones ready, each with
an open connection of the default account, so that taking one waits for none while the tests
are slower than a CREATE DATABASE; a clone given back is dropped by the same thread, off the
test's clock. close() drops every clone of this process, also those never given back."""

from __future__ import annotations

import collections
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
    def __init__(self, clones: Clones, size: int = 4, role: str = "app", makers: int = 2):
        """makers: threads making clones side by side (PostgreSQL 14's CREATE DATABASE waits for
        two checkpoints, which concurrent ones share: two makers make nearly twice as many)."""
        self.clones = clones
        self.size = max(0, size)
        self.role = role
        self.makers = max(1, makers)
        self._ready: collections.deque[Lease] = collections.deque()
        self._making = 0
        self._to_drop: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def start(self, warm: bool = True) -> "Pool":
        """warm: return only once `size` clones are ready (the session's start bears their
        making, not its first tests)."""
        self.clones.ensure_template()  # built once, before any test waits on it
        if self.size:
            for i in range(self.makers):
                thread = threading.Thread(target=self._work, name=f"localenv-pool-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)
        if warm:
            with self._cond:
                while len(self._ready) < self.size and self._error is None:
                    self._cond.wait(timeout=1.0)
                if self._error is not None:
                    raise self._error
        return self

    def _make(self, admin) -> Lease:
        clone = self.clones.create(self.role, conn=admin)
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
                            self._ready.append(lease)
                            self._cond.notify_all()
                    elif drop:
                        self.clones.drop(drop, conn=admin)
        except BaseException as exc:  # reported to the next take(), which makes its own
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def take(self, role: str | None = None) -> Lease:
        """A ready clone (made now when none is and the pool cannot make one in time)."""
        import time

        start = time.perf_counter()
        with self._cond:
            while not self._ready and self._error is None and self.size and self._threads:
                self._cond.wait(timeout=1.0)
            lease = self._ready.popleft() if self._ready else None
            self._cond.notify_all()
        if lease is None:
            if self._error is not None:
                raise self._error
            clone = self.clones.create(self.role)
            lease = Lease(clone, clone.connect())
        if role and role != self.role:
            lease.conn.close()
            lease = Lease(Clone(lease.clone.name, lease.clone.endpoint, role), None)
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
        """Stop the thread; drop the ready clones and every other clone of this process."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=120)
        for lease in self._ready:
            if lease.conn is not None:
                lease.conn.close()
        self._ready.clear()
        return self.clones.drop_all(mine_only=True)

    def __enter__(self) -> "Pool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
