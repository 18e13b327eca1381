"""What a way of running the laptop database offers the command line."""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from pathlib import Path

from conformance.manifests import Manifests
from conformance.plan import figure
from localenv.connection import ROLES, Endpoint, Login
from localenv.settings import Settings

# The laptop keeps snapshots until the user deletes them: the CronJob's 7-day pruning is for
# the cluster's backup volume, not for a developer's "before my risky change" dump.
LAPTOP_RETENTION_DAYS = "36500"


@dataclass(frozen=True)
class Status:
    backend: str
    running: bool
    port: int | None
    data_dir: Path
    data_bytes: int
    ready: str          # the readiness probe's verdict, or why it was not run
    note: str = ""


@dataclass(frozen=True)
class UpResult:
    endpoint: Endpoint
    already_running: bool
    created: bool       # a new data directory was initialised
    notes: tuple[str, ...] = ()


def logins(manifests: Manifests) -> tuple[Login, ...]:
    secret = figure("secret").expected
    keys = {"app": ("username", "password"), "admin": ("admin-username", "admin-password"),
            "readonly": ("readonly-username", "readonly-password")}
    return tuple(Login(role, manifests.secret_value(secret, keys[role][0]) or "",
                       manifests.secret_value(secret, keys[role][1]) or "") for role in ROLES)


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
    def endpoint(self) -> Endpoint:
        """How to reach the running server; EnvironmentProblem when it is not running."""

    @abc.abstractmethod
    def psql_argv(self, role: str, extra: list[str]) -> tuple[list[str], dict[str, str]]: ...

    @abc.abstractmethod
    def log_files(self) -> list[Path]: ...

    @abc.abstractmethod
    def backup(self, folder: Path) -> Path:
        """Run the backup CronJob's script into folder; return the new dump."""

    @abc.abstractmethod
    def restore(self, dump: Path) -> None: ...

    @abc.abstractmethod
    def delete_data(self) -> None:
        """Remove the data directory (the server must be stopped). Backups stay."""
