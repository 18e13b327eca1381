"""The server the clones are made on: localenv's, when one is up (the developer's laptop
database: its accounts, its configuration), else a throwaway embedded server for this process,
started the way the manifests start it and removed at the end, as pytest-postgresql's process
fixture does."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import EnvironmentProblem, InputError

MODES = ("auto", "localenv", "embedded")


def running_localenv(settings, manifests, progress=None):
    """localenv's running target for this home, else None: the native backend's, or the docker
    backend's where this home has used it (LOCALENV_BACKEND=docker looks there first). Looking
    makes nothing: a home never brought up stays as it is."""
    from localenv.docker_backend import DockerBackend
    from localenv.native_backend import NativeBackend

    order = [DockerBackend, NativeBackend] if os.environ.get("LOCALENV_BACKEND") == "docker" else \
        [NativeBackend, DockerBackend]
    for kind in order:
        backend = kind(settings, manifests, progress)
        if not backend.workdir.is_dir():  # never up with this backend in this home
            continue
        try:
            return backend.running_target()
        except EnvironmentProblem:
            continue
    return None


@dataclass(frozen=True)
class SessionServer:
    target: object
    where: str             # which server, for a report's header
    passfile: str | None   # a pgpass (0600) with the accounts' passwords for it


@contextmanager
def session_server(mode: str = "auto", progress=None, home=None, room: int | None = None):
    """localenv's server (auto, localenv) or a throwaway embedded one (auto when none is up,
    embedded): room is what the throwaway servers and their clones will take (room_for), for
    choosing where the throwaway keeps its data."""
    from conformance import manifests as loader
    from conformance.targets.native import NativeTarget
    from localenv.settings import Settings

    if mode not in MODES:
        raise InputError(f"server {mode!r}: one of {', '.join(MODES)}")
    settings = Settings.resolve(home=home)
    manifests = loader.load(settings.manifests)
    if mode in ("auto", "localenv"):
        target = running_localenv(settings, manifests, progress)
        if target is not None:
            passfile = str(settings.pgpass) if settings.pgpass.is_file() else None
            yield SessionServer(target, f"localenv's server on {target.host}:{target.port} ({settings.home})",
                                passfile)
            return
        if mode == "localenv":
            raise EnvironmentProblem(f"no localenv server is running for {settings.home}. Fix: localenv up")
    scratch = memory_scratch(SERVER_ROOM if room is None else room)
    with NativeTarget(manifests, progress=progress, scratch=scratch) as target:
        from localenv.backend import endpoint_of
        from localenv.connection import write_pgpass

        passfile = target.workdir / "pgpass"
        write_pgpass(endpoint_of(target, manifests), passfile)
        where = f"a throwaway embedded server on {target.host}:{target.port}"
        yield SessionServer(target, where + (f", its data in memory ({scratch})" if scratch else ""), str(passfile))


# A throwaway server's data is disposable: in memory it costs no disk writes, and a clone is
# a copy of some 300 files (measured here: 15 ms in /dev/shm, up to 280 ms on a busy disk).
MEMORY_FS = Path("/dev/shm")
SERVER_ROOM = 256 * 1024 * 1024  # the server itself and its template, with room
CLONE_ROOM = 8 * 1024 * 1024     # one clone: a copy of the template


def room_for(pool_size: int, sharing: int = 1) -> int:
    """What `sharing` throwaway servers (one per xdist worker) need in memory: each its own
    server and template, and up to twice its pool in clones (ready ones and given-back ones not
    yet dropped)."""
    return sharing * (SERVER_ROOM + 2 * max(pool_size, 1) * CLONE_ROOM)


def memory_scratch(room: int = SERVER_ROOM) -> Path | None:
    """/dev/shm where it is a writable memory file system with `room` free (room_for: the
    servers and their clones); else None (the disk). LOCALENV_SCRATCH names another folder, or
    "disk" for the default temporary folder."""
    chosen = os.environ.get("LOCALENV_SCRATCH")
    if chosen:
        return None if chosen == "disk" else Path(chosen)
    try:
        stat = os.statvfs(MEMORY_FS)
    except OSError:
        return None
    if not os.access(MEMORY_FS, os.W_OK) or stat.f_bavail * stat.f_frsize < room:
        return None
    return MEMORY_FS
