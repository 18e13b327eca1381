"""Ending a child process politely, then firmly."""

from __future__ import annotations

import subprocess


def terminate(proc: subprocess.Popen | None, grace: float = 10) -> None:
    """SIGTERM, wait up to grace seconds, then SIGKILL; always reaped."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
