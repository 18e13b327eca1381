"""Reaching a Docker engine, or saying in one line why not."""

from __future__ import annotations

import os

from conformance.errors import EnvironmentProblem


def unavailable_reason() -> str | None:
    """None when a Docker engine answers; else why not, in one line (for skips and errors)."""
    try:
        import docker
    except ImportError:
        return "the Python package docker is not installed (pip install -e '.[docker]')"
    try:
        client = docker.from_env(timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # docker raises DockerException, requests' and socket errors alike
        where = os.environ.get("DOCKER_HOST", "the default socket /var/run/docker.sock")
        return f"no Docker engine answers at {where} ({_why(exc)})"
    return None


def require() -> None:
    reason = unavailable_reason()
    if reason:
        raise EnvironmentProblem(f"the docker target needs a running Docker engine: {reason}. "
                                 "Fix: start Docker, or use --target native")


def _why(exc: Exception) -> str:
    text = str(exc)
    for needle, meaning in (("FileNotFoundError", "no socket there"), ("No such file", "no socket there"),
                            ("Connection refused", "connection refused"),
                            ("Permission denied", "permission denied: are you in the docker group?")):
        if needle in text:
            return meaning
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:160]
