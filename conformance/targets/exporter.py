"""The metrics sidecar as a local process (native target): Debian's postgres_exporter with
the sidecar's own env and args, the pod's addresses mapped onto this machine. Ready means
/metrics answered; stopped with the target."""

from __future__ import annotations

import subprocess
import urllib.request

from conformance import timeouts, tools, workload
from conformance.processes import terminate
from conformance.pg import ports
from conformance.registry import Skip
from conformance.targets.mapping import LocalMapping
from conformance.targets.waiting import wait_until

LISTEN_FLAG = "--web.listen-address"


def local_argv(binary: str, container: workload.Container, listen: str) -> list[str]:
    """The sidecar's args with its listen address replaced by a free local one."""
    args = [a for a in container.args if not a.startswith(LISTEN_FLAG)]
    return [binary, *args, f"{LISTEN_FLAG}={listen}"]


class LocalExporter:
    def __init__(self, container: workload.Container, mapping: LocalMapping):
        self.container = container
        self.mapping = mapping
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> str:
        binary = tools.find("prometheus-postgres-exporter")
        if binary is None:
            raise Skip(tools.reason("prometheus-postgres-exporter"))
        port = ports.free_port()
        env = self.mapping.env(self.container.env)
        self.proc = subprocess.Popen(local_argv(binary, self.container, f"127.0.0.1:{port}"), env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{port}/metrics"

        def answered():
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres_exporter exited: {self.proc.stderr.read().strip()[-300:]}")
            with urllib.request.urlopen(self.url, timeout=5) as response:
                return response.status == 200

        wait_until(answered, f"postgres_exporter answering at {self.url}", timeouts.SERVER_READY, interval=0.2,
                   retry_on=(OSError,))
        return self.url

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
