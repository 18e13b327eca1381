"""The lifecycle of one PostgreSQL data directory: initdb, start, stop, status. Nothing else.

PostgreSQL refuses to run as root. When this process is root, every server-side command
(initdb, pg_ctl, postgres) runs as an unprivileged account instead (`nobody` unless
CONFORMANCE_PG_USER names another), and the files it needs are handed to that account.
Client programs (psql, pg_dump) may run as root and are not run from here.
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from conformance.pg.binaries import Binaries

ENV_RUN_AS = "CONFORMANCE_PG_USER"


class ServerError(Exception):
    """A server command failed; the message names the command and the log to read."""


@dataclass(frozen=True)
class RunAs:
    """The OS account that server processes run as (None: this process's own)."""

    user: str | None = None

    @classmethod
    def for_this_process(cls) -> "RunAs":
        if os.geteuid() != 0:
            return cls(None)
        return cls(os.environ.get(ENV_RUN_AS, "nobody"))

    def _ids(self) -> tuple[int, int]:
        entry = pwd.getpwnam(self.user)
        return entry.pw_uid, entry.pw_gid

    def popen_kwargs(self) -> dict:
        if self.user is None:
            return {}
        uid, gid = self._ids()
        return {"user": uid, "group": gid, "extra_groups": []}

    def give(self, *paths: Path) -> None:
        """Make paths (not recursively) belong to the server account."""
        if self.user is None:
            return
        uid, gid = self._ids()
        for path in paths:
            os.chown(path, uid, gid)


@dataclass
class Server:
    binaries: Binaries
    datadir: Path
    rundir: Path  # socket, pg_ctl's start-up log; owned by the server account
    run_as: RunAs = field(default_factory=RunAs.for_this_process)

    @property
    def startup_log(self) -> Path:
        return self.rundir / "startup.log"

    def prepare_dirs(self) -> None:
        for path in (self.rundir, self.datadir.parent):
            path.mkdir(parents=True, exist_ok=True)
        self.rundir.chmod(0o700)
        self.run_as.give(self.rundir)

    def _run(self, argv: list[str], what: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {
            "PATH": f"{self.binaries.bindir}:/usr/bin:/bin",
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "HOME": str(self.rundir),
            "TZ": "UTC",
        }
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=self.rundir,
            timeout=timeout, check=False, **self.run_as.popen_kwargs(),
        )
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            last = detail[-1] if detail else f"exit {proc.returncode}"
            raise ServerError(f"{what} failed: {last} (log: {self.startup_log})")
        return proc

    # -- state ------------------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def data_major(self) -> int | None:
        try:
            return int((self.datadir / "PG_VERSION").read_text().strip().split(".")[0])
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        if not self.initialized:
            return False
        proc = subprocess.run(
            [self.binaries.tool("pg_ctl"), "status", "-D", str(self.datadir)],
            capture_output=True, text=True, check=False, **self.run_as.popen_kwargs(),
        )
        return proc.returncode == 0

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    # -- lifecycle --------------------------------------------------------------------------

    def initdb(self, superuser: str, password: str, args: list[str]) -> None:
        self.prepare_dirs()
        pwfile = self.rundir / "initdb.pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        self.run_as.give(pwfile)
        try:
            self._run(
                [self.binaries.tool("initdb"), "-D", str(self.datadir), f"--username={superuser}",
                 f"--pwfile={pwfile}", *args],
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, options: list[str], timeout: int = 60) -> None:
        """Start and wait (pg_ctl -w) until the postmaster accepts connections."""
        self.prepare_dirs()
        opts = " ".join(shlex.quote(o) for o in options)
        self._run(
            [self.binaries.tool("pg_ctl"), "start", "-w", "-t", str(timeout), "-D", str(self.datadir),
             "-l", str(self.startup_log), "-o", opts],
            "pg_ctl start", timeout=timeout + 10,
        )

    def stop(self, mode: str = "fast", timeout: int = 60) -> None:
        if not self.running():
            return
        self._run(
            [self.binaries.tool("pg_ctl"), "stop", "-w", "-t", str(timeout), "-m", mode, "-D", str(self.datadir)],
            "pg_ctl stop", timeout=timeout + 10,
        )

    def kill(self) -> None:
        """Stop at once (immediate mode); used when a run is torn down after a failure."""
        try:
            self.stop(mode="immediate", timeout=30)
        except (ServerError, subprocess.TimeoutExpired):
            pid = self.postmaster_pid()
            if pid:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
