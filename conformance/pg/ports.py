"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now. Another process may take it before the server
    binds it, so callers retry a start that fails to bind (see Server.start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def first_free_from(preferred: int, host: str = "127.0.0.1", tries: int = 100) -> int:
    for port in range(preferred, preferred + tries):
        if is_free(port, host):
            return port
    return free_port(host)


def choose(exact: int | None, prefer: int | None, host: str = "127.0.0.1") -> int | None:
    """exact: that port, or a one-line error when something else has it; prefer: that one or
    the next free one; neither: None (the caller's default: any free port)."""
    if exact is not None:
        if not is_free(exact, host):
            from conformance.errors import EnvironmentProblem

            raise EnvironmentProblem(f"port {exact} on {host} is in use by another program. "
                                     "Fix: stop that program, or choose another port")
        return exact
    if prefer is not None:
        return first_free_from(prefer, host)
    return None
