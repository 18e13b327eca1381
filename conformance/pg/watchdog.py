"""Stops a server whose owner died: `python -m conformance.pg.watchdog DATADIR [WORKDIR]`.

The owner (a conformance run, a test) starts this with a pipe on its stdin and keeps the
other end open. When the owner ends normally it writes "done" first; when it is killed
(SIGKILL, OOM) the pipe just closes, and this process shuts the server down at once
(SIGQUIT to the postmaster, PostgreSQL's immediate shutdown) and removes WORKDIR, so a
crashed run leaves no server running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def start(datadir: Path, workdir: Path | None) -> subprocess.Popen:
    argv = [sys.executable, "-m", "conformance.pg.watchdog", str(datadir)] + ([str(workdir)] if workdir else [])
    # Its own session: a Ctrl-C meant for the owner must not kill the watchdog first.
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, text=True)


def release(proc: subprocess.Popen | None) -> None:
    """The owner stopped the server itself: let the watchdog go."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.stdin.write("done\n")
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _postmaster(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def main(argv: list[str]) -> int:
    datadir = Path(argv[0])
    workdir = Path(argv[1]) if len(argv) > 1 else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.stdin.read().strip() == "done":
        return 0
    pid = _postmaster(datadir)
    if pid:
        try:
            os.kill(pid, signal.SIGQUIT)
            for _ in range(100):  # up to 10 s for the postmaster and its children to go
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
