"""A kubectl port-forward that survives pod restarts.

kubectl port-forward ends when its pod goes away (a pod delete, a scale to zero and back).
The supervisor restarts it on the same local port, so a connection string handed out once
stays valid; a caller waits for the server to answer again, never for a log line. Ready
means kubectl printed its "Forwarding from" line, which it does after it bound the port.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from typing import Callable

from conformance import timeouts
from conformance.errors import EnvironmentProblem
from conformance.processes import terminate

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")
RESTART_BACKOFF = 1.0


class PortForward:
    def __init__(self, argv_for_port: Callable[[int], list[str]], remote_port: int, local_port: int = 0):
        """argv_for_port(local_port) -> the kubectl command; local_port 0: kubectl picks one
        on the first start, and every restart reuses it."""
        self._argv_for_port = argv_for_port
        self.remote_port = remote_port
        self.local_port = local_port
        self._proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self.last_error = ""

    def start(self, timeout: float = timeouts.PORT_FORWARD_READY) -> int:
        self._thread = threading.Thread(target=self._supervise, name="port-forward", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise EnvironmentProblem(f"kubectl port-forward printed no Forwarding line within {timeout:g} s"
                                     + (f": {self.last_error}" if self.last_error else ""))
        return self.local_port

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(self._argv_for_port(self.local_port), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self._spawn()
            proc = self._proc
            threading.Thread(target=self._drain_stderr, args=(proc,), daemon=True).start()
            for line in proc.stdout:
                match = FORWARDING.search(line)
                if match:
                    self.local_port = int(match.group(1))
                    self._ready.set()
            proc.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            time.sleep(RESTART_BACKOFF)  # the pod is being replaced; retry gently

    def _drain_stderr(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            if line.strip():
                self.last_error = line.strip()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        self._stopping.set()
        terminate(self._proc)
        if self._thread is not None:
            self._thread.join(timeout=15)
