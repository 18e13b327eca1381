"""`docker exec -i`: a command in a running container with stdin fed in, through the engine's
API (docker-py's exec_create / exec_start on a raw socket), as `kubectl exec -i` does it."""

from __future__ import annotations

import socket
import subprocess
import threading

from docker.utils.socket import frames_iter


def run(client, container_id: str, argv: list[str], stdin: bytes = b"", timeout: float = 300,
        user: str | None = None, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    api = client.api
    exec_id = api.exec_create(container_id, argv, stdin=True, stdout=True, stderr=True, tty=False,
                              user=user or "", environment=environment)["Id"]
    response = api.exec_start(exec_id, socket=True)
    raw = getattr(response, "_sock", response)
    raw.settimeout(timeout)
    failed: list[BaseException] = []

    def feed() -> None:
        # In a thread: a command that writes while it reads must not wait on us, nor we on it.
        try:
            if stdin:
                raw.sendall(stdin)
            raw.shutdown(socket.SHUT_WR)  # EOF on the command's stdin
        except OSError as exc:
            failed.append(exc)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    out, err = bytearray(), bytearray()
    try:
        for stream, data in frames_iter(response, tty=False):
            (out if stream == 1 else err).extend(data)
    except socket.timeout:
        raise subprocess.TimeoutExpired(argv, timeout) from None
    finally:
        writer.join(timeout=5)
        response.close()
    code = api.exec_inspect(exec_id).get("ExitCode")
    if failed and code == 0:
        raise failed[0]
    return subprocess.CompletedProcess(argv, code if code is not None else -1, bytes(out), bytes(err))
