"""The failure modes users of PostgreSQL images report after node crashes, each drilled on a
target that starts the server the way the manifests do (the StatefulSet's init container
first): postmaster.pid left empty, naming a live process that is no server of this data
directory (PID 1 in a new container, or a sidecar), or naming a PID that does not exist.
After each the server must start by itself; and while it runs, a second server started the
same way on the same data directory must still be refused (PostgreSQL's lock must survive the
fix)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field

import psycopg

from conformance.errors import EnvironmentProblem, one_line

LOCK = "postmaster.pid"


@dataclass
class PidTrial:
    case: str
    wrote: str
    came_back: bool = False
    seconds: float = 0.0
    details: list[str] = field(default_factory=list)


def _dead_pid() -> int:
    """A PID that existed a moment ago and does not now (its process ended and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def cases(target) -> list[tuple[str, str]]:
    """(case, what postmaster.pid then holds) for this target. PID 1 is alive in every
    container the start path runs in (the init container's own shell) and on this machine (its
    init): never a server of this data directory."""
    out = [("empty", ""), ("PID 1, a live process that is not a server of this data directory", "1\n")]
    if hasattr(target, "neighbour_process"):
        out.append(("a live process of the server's account (a sidecar's place)", "{live}\n"))
    out.append(("a PID that does not exist", "{dead}\n"))
    return out


def _answers(target) -> bool:
    with psycopg.connect(**target.conninfo("superuser", dbname="postgres")) as conn:
        return conn.execute("SELECT 1").fetchone()[0] == 1


def drill(target, progress=lambda m: None) -> list[PidTrial]:
    """target is up (started as the manifests start it). Each case: stop the server, leave the
    lock as a crash does, start it the way the manifests do."""
    trials = []
    for case, content in cases(target):
        live = target.neighbour_process() if "{live}" in content else None
        try:
            text = content.format(live=live.pid if live else "", dead=_dead_pid())
            trial = PidTrial(case, text.strip() or "(empty)")
            target.stop_server()
            target.write_data_file(LOCK, text)
            start = time.monotonic()
            try:
                target.start_server()
                trial.came_back = _answers(target)
            except (EnvironmentProblem, psycopg.Error) as exc:
                trial.details.append(one_line(exc, 300))
            trial.seconds = time.monotonic() - start
        finally:
            if live is not None:
                live.kill()
                live.wait()
        progress(f"postmaster.pid {case}: {'came back by itself' if trial.came_back else 'did NOT come back'}"
                 f" in {trial.seconds:.1f} s")
        trials.append(trial)
    return trials


def second_server_refused(target) -> tuple[bool, str]:
    """While the server runs, the manifests' start path again on the same data directory (in
    the running server's own process namespace, where its lock means something): (refused, what
    the second server said)."""
    proc = target.second_start()
    said = (proc.stderr or proc.stdout or "").strip()
    refused = proc.returncode != 0 and ("lock file" in said and "already exists" in said)
    still = _answers(target)
    lines = said.splitlines()
    shown = next((line for line in lines if "lock file" in line), lines[-1] if lines else f"exit {proc.returncode}")
    return refused and still, shown.split("UTC [", 1)[-1].split("] ", 1)[-1].strip()


__all__ = ["PidTrial", "cases", "drill", "second_server_refused"]
