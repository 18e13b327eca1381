"""Where localenv keeps things and which port it prefers, resolved once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from conformance.plan import figure

ENV_HOME = "LOCALENV_HOME"
ENV_PORT = "LOCALENV_PORT"
DEFAULT_PORT = figure("port").expected  # the cluster's port, when it is free here
APP_NAME = "product-change-db"


def default_home() -> Path:
    if os.geteuid() == 0:
        # The server runs as an unprivileged account when we are root, and cannot traverse
        # /root (mode 0700): keep the data where that account can reach it.
        return Path("/var/lib") / APP_NAME / "localenv"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME)) / "localenv"


def checkout_manifests() -> Path:
    """manifests/ of the checkout this package was installed from, else ./manifests."""
    beside = Path(__file__).resolve().parent.parent / "manifests"
    return beside if beside.is_dir() else Path("manifests")


@dataclass(frozen=True)
class Settings:
    home: Path
    manifests: Path
    preferred_port: int = DEFAULT_PORT
    port: int | None = None  # exactly this port (--port), else preferred or the next free one
    pg_major: int | None = None  # --pg-major: another PostgreSQL major than the plan's (native)

    @property
    def backups(self) -> Path:
        return self.home / "backups"

    def backend_dir(self, backend: str) -> Path:
        return self.home / backend

    @property
    def pgpass(self) -> Path:
        return self.home / "pgpass"

    @classmethod
    def resolve(cls, home: Path | None = None, manifests: Path | None = None, port: int | None = None,
                pg_major: int | None = None) -> "Settings":
        from conformance.errors import InputError

        raw_port = os.environ.get(ENV_PORT)
        try:
            preferred = int(raw_port) if raw_port else DEFAULT_PORT
        except ValueError:
            raise InputError(f"{ENV_PORT}={raw_port!r} is not a port number") from None
        for value, what in ((preferred, ENV_PORT), (port, "--port")):
            if value is not None and not 0 < value < 65536:
                raise InputError(f"{what} {value} is not a port number (1-65535)")
        chosen_home = home or (Path(os.environ[ENV_HOME]) if os.environ.get(ENV_HOME) else default_home())
        return cls(home=chosen_home.expanduser().absolute(), manifests=manifests or checkout_manifests(),
                   preferred_port=preferred, port=port, pg_major=pg_major)
