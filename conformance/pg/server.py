"""The lifecycle of one PostgreSQL data directory: initdb, start, stop, status. Nothing else.

PostgreSQL refuses to run as root. When this process is root, every server-side command
(initdb, pg_ctl, postgres) runs as an unprivileged account instead (`nobody` unless
CONFORMANCE_PG_USER names another), and the files it needs are handed to that account.
Client programs (psql, pg_dump) may run as root and are not run from here.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from conformance import timeouts
from conformance.errors import EnvironmentProblem
from conformance.pg.binaries import Binaries

ENV_RUN_AS = "CONFORMANCE_PG_USER"
_SAYS_NOTHING = {"Examine the log output.", "Failure, exiting"}


class ServerError(EnvironmentProblem):
    """A server command failed; the message names the command and the log to read. output:
    all the command printed, for a caller that knows how to read it."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


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


@contextlib.contextmanager
def deferred_interrupts():
    """Hold SIGINT and SIGTERM until the block ends, then raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


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
        self.rundir.mkdir(parents=True, exist_ok=True)
        # PGDATA may lie deeper below the volume (18's /var/lib/postgresql/18/docker): the
        # directories made for it belong to the server account, which creates PGDATA there.
        missing = [p for p in (self.datadir.parent, *self.datadir.parent.parents) if not p.exists()]
        for path in reversed(missing):
            path.mkdir(mode=0o700)
            self.run_as.give(path)
        self.rundir.chmod(0o700)
        self.run_as.give(self.rundir)

    def _run(self, argv: list[str], what: str, timeout: float = 120, shield: bool = False) -> subprocess.CompletedProcess:
        """Run a server command as the server account. shield: Ctrl-C and SIGTERM wait until
        it has finished: a `pg_ctl start` interrupted half-way (even while Python is still
        forking it) leaves a postmaster that the caller's cleanup cannot see yet."""
        env = {
            "PATH": f"{self.binaries.bindir}:/usr/bin:/bin",
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "HOME": str(self.rundir),
            "TZ": "UTC",
        }
        with deferred_interrupts() if shield else contextlib.nullcontext():
            proc = subprocess.run(
                argv, capture_output=True, text=True, env=env, cwd=self.rundir, timeout=timeout,
                check=False, start_new_session=shield, **self.run_as.popen_kwargs(),
            )
        if proc.returncode != 0:
            # The last line that says something: pg_ctl ends on "Examine the log output.",
            # pg_upgrade on "Failure, exiting" after the line that names the problem.
            said = lambda text: [l.strip() for l in text.splitlines() if l.strip() and l.strip() not in _SAYS_NOTHING]  # noqa: E731
            detail = said(proc.stderr) or said(proc.stdout)
            last = detail[-1] if detail else f"exit {proc.returncode}"
            raise ServerError(f"{what} failed: {last} (log: {self.startup_log})", proc.stdout + proc.stderr)
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
        """The postmaster of this data directory is alive. Not `pg_ctl status`: after a crash
        or reboot the PID in a stale postmaster.pid may belong to another process, and pg_ctl
        (like the postmaster itself) would take that for a running server."""
        pid = self.postmaster_pid()
        return pid is not None and self._is_our_postmaster(pid)

    @property
    def pidfile(self) -> Path:
        return self.datadir / "postmaster.pid"

    def _pidfile_lines(self) -> list[str]:
        try:
            return self.pidfile.read_text().splitlines()
        except OSError:
            return []

    def postmaster_pid(self) -> int | None:
        try:
            return int(self._pidfile_lines()[0])
        except (ValueError, IndexError):
            return None

    def postmaster_port(self) -> int | None:
        """The port the running postmaster listens on (line 4 of postmaster.pid)."""
        try:
            return int(self._pidfile_lines()[3])
        except (ValueError, IndexError):
            return None

    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            try:
                # The postmaster's working directory is its data directory.
                return Path(proc.cwd()).resolve() == self.datadir.resolve()
            except psutil.AccessDenied:
                # Another account's process we cannot inspect: trust its command line if we
                # can read it, otherwise assume it is ours rather than risk removing a live lock.
                try:
                    return str(self.datadir) in " ".join(proc.cmdline())
                except psutil.AccessDenied:
                    return True
        except psutil.NoSuchProcess:
            return False

    def clear_socket_locks(self) -> None:
        """The socket directory's lock files, as a new pod's emptyDir has none (a crash leaves
        them naming a dead or unreaped postmaster, and PostgreSQL refuses to bind then)."""
        if self.running():
            return
        for lock in self.rundir.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)

    # -- lifecycle --------------------------------------------------------------------------

    def initdb(self, superuser: str, password: str, args: list[str]) -> None:
        from conformance.pg import initdb_template

        self.prepare_dirs()
        template_key = initdb_template.key(self.binaries.bindir, superuser, password, args)
        template = initdb_template.find(template_key)
        if template is not None and not self.datadir.exists():
            initdb_template.copy(template, self.datadir, self.run_as._ids() if self.run_as.user else None)
            return
        self._initdb(superuser, password, args)
        initdb_template.save(template_key, self.datadir)

    def _initdb(self, superuser: str, password: str, args: list[str]) -> None:
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
        try:
            self._run(
                [self.binaries.tool("pg_ctl"), "start", "-w", "-t", str(timeout), "-D", str(self.datadir),
                 "-l", str(self.startup_log), "-o", opts],
                "pg_ctl start", timeout=timeout + 10, shield=True,
            )
        except ServerError as exc:
            # pg_ctl says "could not start server"; the server's own FATAL says why.
            fatal = [line.split("FATAL:", 1)[1].strip() for line in self._startup_tail() if "FATAL:" in line]
            if fatal and fatal[-1] not in str(exc):
                raise ServerError(f"{exc}: the server said: {fatal[-1]}", exc.output) from None
            raise

    def _startup_tail(self, lines: int = 20) -> list[str]:
        try:
            return self.startup_log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def second_postmaster(self, options: list[str], timeout: float = timeouts.SECOND_SERVER) -> subprocess.CompletedProcess:
        """`postgres -D` on this data directory while its server runs, as the server account:
        PostgreSQL must refuse it (lock file "postmaster.pid" already exists). One that has not
        ended within timeout started: it is stopped at once and reported with exit 0."""
        proc = subprocess.Popen([self.binaries.tool("postgres"), "-D", str(self.datadir), *options],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.rundir,
                                env={"PATH": f"{self.binaries.bindir}:/usr/bin:/bin", "LC_ALL": "C.UTF-8",
                                     "TZ": "UTC"}, **self.run_as.popen_kwargs())
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGQUIT)  # immediate shutdown: it must not write more
            out, err = proc.communicate(timeout=60)
            return subprocess.CompletedProcess(proc.args, 0, out, err + f"\nit was still running after {timeout:g} s")
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def stop(self, mode: str = "fast", timeout: int = 60) -> None:
        if not self.running():
            return
        self._run(
            [self.binaries.tool("pg_ctl"), "stop", "-w", "-t", str(timeout), "-m", mode, "-D", str(self.datadir)],
            "pg_ctl stop", timeout=timeout + 10,
        )

    def upgrade_from(self, old: "Server", superuser: str, check: bool, ports: tuple[int, int],
                     timeout: int = 1800) -> None:
        """pg_upgrade from old's data directory into this (new, initialised, stopped) one, as
        the server account. check: only pg_upgrade --check, which changes nothing. Copy mode:
        the old directory stays as it was, for a rollback."""
        self.prepare_dirs()
        argv = [self.binaries.tool("pg_upgrade"), "-b", str(old.binaries.bindir), "-B", str(self.binaries.bindir),
                "-d", str(old.datadir), "-D", str(self.datadir), "-U", superuser, "-p", str(ports[0]),
                "-P", str(ports[1]), "-s", str(self.rundir)]
        what = "pg_upgrade --check" if check else "pg_upgrade"
        try:
            self._run(argv + (["--check"] if check else []), what, timeout=timeout)
        except ServerError as exc:
            # pg_upgrade ends the failed step's line with "fatal" (18: "failed check: <what>")
            # and explains it in the paragraph after; the explanation's first line says it.
            lines = [line.strip() for line in exc.output.splitlines()]
            step = next((i for i, line in enumerate(lines) if line.endswith("fatal") or "failed check:" in line), None)
            if step is None:
                raise
            explained = next((line for line in lines[step + 1:] if line and not line.endswith("failed:")), "")
            step_text = lines[step].split("failed check:")[-1].removesuffix("fatal").strip()
            raise ServerError(f"{what} failed at \"{step_text}\": {explained}", exc.output) from None

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
