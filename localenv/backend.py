"""What a way of running the laptop database offers the command line."""

from __future__ import annotations

import abc
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conformance import workload
from conformance.errors import EnvironmentProblem, InputError
from conformance.live.runner import apply_schema
from conformance.manifests import Manifests
from conformance.pg import libpq
from conformance.plan import figure
from conformance.targets.base import account
from localenv import verification
from localenv.connection import ROLES, Endpoint, Login
from localenv.settings import Settings
from localenv.state import State

# A session whose commit waits for its WAL to be written, whatever the server's plan 12.1
# synchronous_commit=off: what localenv reports as done must survive a killed server.
DURABLE_SESSION = f"-c synchronous_commit={figure('schema-job-commit').expected}"

# The laptop keeps snapshots until the user deletes them: the CronJob's 7-day pruning is for
# the cluster's backup volume, not for a developer's "before my risky change" dump.
LAPTOP_RETENTION_DAYS = "36500"


@dataclass(frozen=True)
class Status:
    backend: str
    running: bool
    port: int | None
    data_dir: str       # a directory, or where the backend keeps the data (a Docker volume)
    data_bytes: int | None
    ready: str          # the readiness probe's verdict, or why it was not run
    note: str = ""


@dataclass(frozen=True)
class UpResult:
    endpoint: Endpoint
    already_running: bool
    created: bool       # a new data directory was initialised
    notes: tuple[str, ...] = ()


def logins(manifests: Manifests) -> tuple[Login, ...]:
    return tuple(account(manifests, role) for role in ROLES)


def endpoint_of(target, manifests: Manifests, database: str | None = None) -> Endpoint:
    """How to reach target's server: its host and port, the accounts manifests make, and a
    database (the plan's, else the one given: a clone)."""
    return Endpoint(target.host, target.port, logins(manifests),
                    **({} if database is None else {"database": database}))


def schema_sha(manifests: Manifests) -> str:
    cm = manifests.find("ConfigMap", figure("schema-configmap").expected)
    data = (cm.get(("data",)) or {}) if cm else {}
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(key.encode() + b"\0" + str(data[key]).encode() + b"\0")
    return digest.hexdigest()[:16]


def dir_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            pass
    return total


class Backend(abc.ABC):
    name = "abstract"

    def __init__(self, settings: Settings, manifests: Manifests, progress=None):
        self.settings = settings
        self.manifests = manifests
        self.progress = progress or (lambda message: None)

    @property
    def workdir(self) -> Path:
        """This backend's own folder in the home: its data, config copies and state."""
        return self.settings.backend_dir(self.name)

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    @abc.abstractmethod
    def up(self) -> UpResult:
        """Start (initialising on first use) and return how to connect. On any failure or
        interruption, stop what this call started and keep the data."""

    @abc.abstractmethod
    def down(self) -> bool:
        """Stop, keeping the data. False when it was not running."""

    @abc.abstractmethod
    def status(self) -> Status: ...

    @abc.abstractmethod
    def log_files(self) -> list[Path]: ...

    @abc.abstractmethod
    def running_target(self):
        """The conformance Target the server runs in; EnvironmentProblem when stopped."""

    @abc.abstractmethod
    def tools(self, target):
        """PostgreSQL 14 client binaries (conformance.pg.binaries.Binaries) on this machine."""

    def endpoint_of(self, target) -> Endpoint:
        return endpoint_of(target, self.manifests)

    def endpoint(self) -> Endpoint:
        """How to reach the running server; EnvironmentProblem when it is not running."""
        return self.endpoint_of(self.running_target())

    # -- what every backend's up and status do the same way --------------------------------
    def _flag(self) -> str:
        return "" if self.name == "native" else f" --backend {self.name}"

    def ensure_schema(self, target, state: State) -> list[str]:
        """Run the init Job's script once per database, then verify what it made: `up` never
        says "started" over a database whose accounts or schema are gone (a crash under the
        dev tuning can lose them). Re-applies the idempotent script when they are missing, and
        says so. Returns notes; EnvironmentProblem when even that does not bring them back."""
        notes = []
        if not state.schema_done:
            self.progress("applying the schema-init Job's script (accounts, schema, initial data)")
            self._apply_durably(target)
            self._applied(state)
        elif state.schema_sha != schema_sha(self.manifests):
            done = self.migrate(target, state)
            notes.append(f"sql/ changed since this database was last initialised; applied as the init Job would "
                         f"({done.summary()}); your rows stay; saved first: {done.backup}")
        missing = verification.missing(target)
        if missing:
            what = "; ".join(missing)
            self.progress(f"the database lacks what the init made ({what}); re-applying the schema-init "
                          "Job's script (idempotent)")
            self._apply_durably(target)
            still = verification.missing(target)
            if still:
                raise EnvironmentProblem(
                    f"the database still lacks {'; '.join(still)} after re-applying the schema-init script. "
                    f"Look with `localenv{self._flag()} psql --as admin`, or start over: "
                    f"localenv{self._flag()} backup && localenv{self._flag()} reset --yes")
            notes.append(f"the init's work was missing ({what}) and was re-applied: lost when the server was "
                         "killed or the machine crashed under the dev tuning (README: the dev tuning)")
        return notes

    def migrate(self, target, state: State):
        """The init Job's script again on the developer's database, after a backup
        (localenv.migrate); the state then records this schema."""
        from localenv import migrate

        done = migrate.migrate(self, target, state, self.progress)
        self._applied(state)
        return done

    def _applied(self, state: State) -> None:
        from localenv.migrate import schema_files

        state.schema_done, state.schema_sha = True, schema_sha(self.manifests)
        state.schema_files = list(schema_files(self.manifests))
        state.save(self.state_file)

    def _apply_durably(self, target) -> None:
        # The Job's script commits with synchronous_commit=on (its PGOPTIONS); sync then asks
        # the OS to write it back, so that neither a killed server nor a power cut right after
        # "done" undoes it (also where the ConfigMap turns fsync off, as plan 12.1's text does).
        apply_schema(target)
        os.sync()

    @staticmethod
    def readiness(target) -> str:
        """The readiness probe's verdict, run as the target runs it."""
        code = target.run_probe("readinessProbe")
        return "ready (readinessProbe exit 0)" if code == 0 else f"not ready (readinessProbe exit {code})"

    # -- the commands every backend shares: they only need a running target ------------------
    def psql_argv(self, role: str, extra: list[str]) -> tuple[list[str], dict[str, str]]:
        target = self.running_target()
        endpoint = self.endpoint_of(target)
        env = libpq.env(endpoint.conninfo(role), PGOPTIONS=f"-c search_path={endpoint.schema},public",
                        PGAPPNAME="localenv-psql")
        return [self.tools(target).tool("psql"), *extra], env

    def backup(self, folder: Path) -> Path:
        """Run the backup CronJob's own script into folder; return the new dump."""
        target = self.running_target()
        container = workload.backup(self.manifests)
        backup_mount = next(m.path for m in container.mounts() if m.source.get("persistentVolumeClaim") is not None)
        folder.mkdir(parents=True, exist_ok=True)
        before = set(folder.glob("*.dump"))
        self.progress(f"running the backup CronJob's script into {folder}")
        proc = target.run_script(container, env={"RETENTION_DAYS": LAPTOP_RETENTION_DAYS}, mounts={backup_mount: folder})
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            raise EnvironmentProblem(f"the backup script failed: {tail[-1] if tail else proc.returncode}; "
                                     f"earlier backups in {folder} are untouched")
        new = sorted(set(folder.glob("*.dump")) - before, key=lambda p: p.stat().st_mtime)
        if not new:  # same second as an earlier dump: the script replaced it with this one
            new = sorted(folder.glob("*.dump"), key=lambda p: p.stat().st_mtime)
        return new[-1]

    def restore(self, dump: Path) -> None:
        """Restore a custom-format dump in one transaction, after saving the current data."""
        target = self.running_target()
        if not dump.is_file():
            raise InputError(f"{dump}: no such file")
        pg_restore = self.tools(target).tool("pg_restore")
        listed = subprocess.run([pg_restore, "--list", str(dump)], capture_output=True, text=True, check=False)
        if listed.returncode != 0:
            raise InputError(f"{dump} is not a pg_dump custom-format archive (what `localenv backup` writes)")
        safety = self.backup(self.settings.backups / "before-restore")
        self.progress(f"saved the current data first: {safety}")
        # As the superuser: the dump also carries the database-level REVOKE on schema public
        # (sql/04-privileges.sql), which only public's owner may run.
        info = target.conninfo("superuser")
        env = libpq.env(info)
        self.progress(f"restoring {dump} as {info['user']}")
        proc = subprocess.run([pg_restore, "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
                               "--no-password", "--dbname", info["dbname"], str(dump)],
                              capture_output=True, text=True, env={**env, "PGOPTIONS": DURABLE_SESSION}, check=False)
        if proc.returncode != 0:
            errors = [l for l in proc.stderr.splitlines() if "error:" in l] or proc.stderr.strip().splitlines()
            raise EnvironmentProblem(f"pg_restore failed and changed nothing (one transaction): "
                                     f"{errors[0].strip() if errors else proc.returncode}")
        os.sync()

    @abc.abstractmethod
    def delete_data(self) -> None:
        """Remove the data directory (the server must be stopped). Backups stay."""

    @abc.abstractmethod
    def made(self) -> list[str]:
        """What this backend made that destroy removes besides the home's files (containers,
        volumes, networks), as "kind name"; [] for the native backend (all are files)."""

    def describe_everything(self, with_backups: bool = False) -> str:
        st = self.status()
        parts = [f"the {self.name} database in {st.data_dir} with every clone and template in it"]
        parts += self.made()
        parts.append(f"localenv's files in {self.workdir}")
        if with_backups:
            parts.append(f"the backups in {self.settings.backups}")
        return ", ".join(parts)

    def destroy(self, with_backups: bool = False) -> list[str]:
        """Stop, and remove everything this home made for this backend (the clones and
        templates live in the data). Backups stay unless asked."""
        import shutil

        removed = []
        if self.down():
            removed.append("the running server (stopped)")
        extra = self.made()
        self.delete_data()
        removed.append("the data, with its clones and templates")
        removed += extra
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
            removed.append(str(self.workdir))
        if with_backups and self.settings.backups.exists():
            shutil.rmtree(self.settings.backups)
            removed.append(str(self.settings.backups))
        others = [d for d in ("native", "docker") if d != self.name and self.settings.backend_dir(d).exists()]
        if not others:  # the last backend of this home: its shared files go too
            self.settings.pgpass.unlink(missing_ok=True)
            (self.settings.home / ".lock").unlink(missing_ok=True)
        return removed
