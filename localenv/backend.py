"""What a way of running the laptop database offers the command line."""

from __future__ import annotations

import abc
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conformance import workload
from conformance.errors import EnvironmentProblem, InputError
from conformance.live.runner import apply_schema
from conformance.manifests import Manifests
from conformance.plan import figure
from conformance.targets.base import account
from localenv.connection import ROLES, Endpoint, Login
from localenv.settings import Settings
from localenv.state import State

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
        return Endpoint(target.host, target.port, logins(self.manifests))

    def endpoint(self) -> Endpoint:
        """How to reach the running server; EnvironmentProblem when it is not running."""
        return self.endpoint_of(self.running_target())

    # -- what every backend's up and status do the same way --------------------------------
    def ensure_schema(self, target, state: State) -> list[str]:
        """Run the init Job's script once per database; later, only say when manifests/ has
        a different schema than the one the database was made from. Returns notes."""
        if not state.schema_done:
            self.progress("applying the schema-init Job's script (accounts, schema, initial data)")
            apply_schema(target)
            state.schema_done, state.schema_sha = True, schema_sha(self.manifests)
            state.save(self.state_file)
            return []
        if state.schema_sha != schema_sha(self.manifests):
            flag = "" if self.name == "native" else f" --backend {self.name}"
            return [f"the schema in manifests/ changed since this database was created; to rebuild it: "
                    f"localenv{flag} backup && localenv{flag} reset --yes"]
        return []

    @staticmethod
    def readiness(target) -> str:
        """The readiness probe's verdict, run as the target runs it."""
        code = target.run_probe("readinessProbe")
        return "ready (readinessProbe exit 0)" if code == 0 else f"not ready (readinessProbe exit {code})"

    # -- the commands every backend shares: they only need a running target ------------------
    def psql_argv(self, role: str, extra: list[str]) -> tuple[list[str], dict[str, str]]:
        target = self.running_target()
        endpoint = self.endpoint_of(target)
        login = endpoint.login(role)
        env = {"PGHOST": endpoint.host, "PGPORT": str(endpoint.port), "PGDATABASE": endpoint.database,
               "PGUSER": login.user, "PGPASSWORD": login.password,
               "PGOPTIONS": f"-c search_path={endpoint.schema},public", "PGAPPNAME": "localenv-psql"}
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
        env = {"PGHOST": info["host"], "PGPORT": str(info["port"]), "PGUSER": info["user"],
               "PGPASSWORD": info["password"], "PGDATABASE": info["dbname"]}
        self.progress(f"restoring {dump} as {info['user']}")
        proc = subprocess.run([pg_restore, "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
                               "--no-password", "--dbname", info["dbname"], str(dump)],
                              capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            errors = [l for l in proc.stderr.splitlines() if "error:" in l] or proc.stderr.strip().splitlines()
            raise EnvironmentProblem(f"pg_restore failed and changed nothing (one transaction): "
                                     f"{errors[0].strip() if errors else proc.returncode}")

    @abc.abstractmethod
    def delete_data(self) -> None:
        """Remove the data directory (the server must be stopped). Backups stay."""
