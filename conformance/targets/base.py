"""What every target offers the live checks: a server reachable over TCP, the manifests'
scripts and probes run as the cluster would run them, and the server's log files."""

from __future__ import annotations

import abc
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conformance import workload
from conformance.manifests import Manifests
from conformance.errors import EnvironmentProblem
from conformance.plan import figure

# Accounts by role: Secret keys of (user, password).
ACCOUNT_KEYS = {
    "superuser": ("superuser-username", "superuser-password"),
    "admin": ("admin-username", "admin-password"),
    "app": ("username", "password"),
    "readonly": ("readonly-username", "readonly-password"),
}


@dataclass(frozen=True)
class Account:
    role: str
    user: str
    password: str

    def __repr__(self) -> str:  # never show the password
        return f"Account({self.role}, {self.user})"


class MissingAccount(EnvironmentProblem):
    """The manifests define no such account: the checks that would use it cannot run."""


def account(manifests: Manifests, role: str) -> Account:
    """An account's user and password. The bootstrap superuser is whoever the database
    container's env makes it, as the official image reads it (POSTGRES_USER, from a value, a
    secretKeyRef or a POSTGRES_USER_FILE); the others come from the Secret (ACCOUNT_KEYS)."""
    if role == "superuser":
        db = workload.database(manifests)
        user, password = db.value("POSTGRES_USER"), db.value("POSTGRES_PASSWORD")
        if user and password is not None:
            return Account(role, user, password)
    user_key, password_key = ACCOUNT_KEYS[role]
    secret = figure("secret").expected
    user, password = manifests.secret_value(secret, user_key), manifests.secret_value(secret, password_key)
    if not user or password is None:
        raise MissingAccount(f"Secret {secret} has no {user_key}/{password_key}: no {role} account to connect as"
                             + (" (and the database container sets no POSTGRES_USER/POSTGRES_PASSWORD)"
                                if role == "superuser" else ""))
    return Account(role, user, password)


class Target(abc.ABC):
    name = "abstract"

    def __init__(self, manifests: Manifests, pg_major: int | None = None):
        self.manifests = manifests
        self.database = figure("database").expected
        # The PostgreSQL major to run: the plan's unless chosen (--pg-major), to prove the
        # manifests on the majors after 14's end of life.
        self.pg_major: int = pg_major or figure("pg-major").expected
        self.notes: list[str] = []  # for the report: how this run differs from the plan's
        self.init_said: list[str] = []  # what the pod's init containers printed at the last start

    # -- lifecycle ------------------------------------------------------------------------
    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None:
        """Tear everything down; safe to call twice and after a failed start."""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _init_container_ran(self, name: str, proc) -> None:
        """What an init container printed, kept and shown; one that failed stops the start, as
        a pod stays in Init while one fails."""
        for line in proc.stdout.splitlines():
            self.init_said.append(f"{name}: {line}")
            getattr(self, "progress", lambda message: None)(f"init container {name}: {line}")
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise EnvironmentProblem(f"init container {name} failed (exit {proc.returncode}): {last[0]}")

    # -- reaching the server --------------------------------------------------------------
    @property
    @abc.abstractmethod
    def host(self) -> str: ...

    @property
    @abc.abstractmethod
    def port(self) -> int: ...

    def account(self, role: str) -> Account:
        return account(self.manifests, role)

    def conninfo(self, role: str = "superuser", dbname: str | None = None, password: str | None = None) -> dict:
        acct = self.account(role)
        return {"host": self.host, "port": self.port, "user": acct.user,
                "password": acct.password if password is None else password,
                "dbname": dbname or self.database, "connect_timeout": 10}

    # -- what the cluster would run -------------------------------------------------------
    @abc.abstractmethod
    def run_script(self, container: workload.Container, env: dict | None = None,
                   mounts: dict[str, Path] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a Job's or CronJob's container command. env overrides variables; mounts replace
        the container's mounts (container path -> local directory)."""

    def exec_database(self, argv: list[str], stdin: bytes = b"",
                      timeout: float = 300) -> subprocess.CompletedProcess:
        """Run argv in the database container, as `kubectl exec -i POD -c postgresql -- ARGV`
        does: its environment, its user, the server on its local socket; stdin fed in. The
        runbooks' in-pod steps run through this (stdout and stderr as bytes)."""
        from conformance.registry import Skip

        raise Skip(f"the {self.name} target cannot run a command in the database container")

    @abc.abstractmethod
    def run_probe(self, probe: str) -> int:
        """Run the database container's exec probe (readinessProbe, livenessProbe, startupProbe)."""

    @abc.abstractmethod
    def stop_server(self) -> None:
        """Stop the server but keep the target, so that probes can be seen failing."""

    @abc.abstractmethod
    def start_server(self, new_pod: bool = True) -> None:
        """Start the server as the pod does. new_pod False: the kubelet restarting the container
        in the same pod (after a process kill), which runs no init container."""

    def kill_server(self) -> None:
        """SIGKILL the server and all its processes at once, as an OOM kill of the container
        does; the node (and its page cache) stays. start_server() brings it back."""
        from conformance.registry import Skip

        raise Skip(f"the {self.name} target cannot kill its server")

    @abc.abstractmethod
    def log_files(self) -> dict[str, str]:
        """Server log files (name -> text) written by the logging collector."""

    def metrics_url(self) -> str:
        """Where the metrics sidecar answers (http://…/metrics); Skip where it does not run."""
        from conformance.registry import Skip

        raise Skip(f"the {self.name} target does not run the metrics sidecar")

    # Every target keeps its local files in self.workdir.
    workdir: Path | None = None

    @property
    def backup_dir(self) -> Path:
        """A local directory where the backup CronJob's /backup is."""
        return self.workdir / "backup"

    @property
    def sql_dir(self) -> Path:
        """A local directory holding the schema ConfigMap's files, as mounted for the Job."""
        return self.workdir / "sql"

    def stop_quietly(self) -> None:
        """stop() for atexit: the process is ending, a failure there has nobody to tell."""
        try:
            self.stop()
        except Exception:
            pass
