"""The service's write path under load, one request per transaction, as the app account: each
client thread records every request the server acknowledged (its commit returned), with the
time and the digest of the row it wrote, so that afterwards the losses can be counted."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field

import psycopg

from conformance.live.statements import FINISHED, REQUEST
from conformance.plan import figure

SCHEMA = figure("schema").expected
PREFIX = "drill-"


def digest(request_id: str, line: str, customer: str) -> str:
    """What the finished row must hold, as the client wrote it (ROW_DIGEST, computed here)."""
    f = FINISHED
    return hashlib.md5(f"{request_id}|{line}|{customer}|{f['current_product_code']}|{f['target_product_code']}|"
                       f"{f['process_status']}|{f['version']}".encode()).hexdigest()


ROW_DIGEST = ("md5(request_id || '|' || line_number || '|' || customer_id || '|' || current_product_code || '|' "
              "|| target_product_code || '|' || process_status || '|' || version)")


def _request(conn, request_id: str, line: str, customer: str) -> None:
    """The service's write path (live/statements.py) for one request, in one transaction."""
    params = {"request_id": request_id, "line": line, "customer": customer}
    with conn.transaction():
        for step in REQUEST:
            conn.execute(step, params)


@dataclass
class Acked:
    request_id: str
    at: float      # time.monotonic() when the commit returned
    digest: str


@dataclass
class Load:
    """Clients writing until stop(): start(), then the fault, then stop() -> what was acknowledged."""

    conninfo: dict
    clients: int = 4
    trial: str = "t"
    acked: list[Acked] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for i in range(self.clients):
            t = threading.Thread(target=self._client, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)

    def _client(self, index: int) -> None:
        n = 0
        try:
            conn = psycopg.connect(**self.conninfo)
        except psycopg.Error:
            with self._lock:
                self.errors += 1
            return
        with conn:
            while not self._stop.is_set():
                n += 1
                request_id = f"{PREFIX}{self.trial}-{index}-{n}"
                line, customer = f"010{index:02d}{n:06d}", f"CUST-{index}-{n}"
                try:
                    _request(conn, request_id, line, customer)
                except psycopg.Error:
                    with self._lock:
                        self.errors += 1
                    return  # the server went away: that is the fault
                with self._lock:
                    self.acked.append(Acked(request_id, time.monotonic(), digest(request_id, line, customer)))

    def running(self) -> int:
        with self._lock:
            return len(self.acked)

    def stop(self, timeout: float = 30) -> list[Acked]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        return list(self.acked)
