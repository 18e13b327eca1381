"""The server the clones are made on: localenv's, when one is up (the developer's laptop
database: its accounts, its configuration), else a throwaway embedded server for this process,
started the way the manifests start it and removed at the end, as pytest-postgresql's process
fixture does."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from conformance.errors import EnvironmentProblem, InputError

MODES = ("auto", "localenv", "embedded")


def running_localenv(settings, manifests, progress=None):
    """localenv's running target for this home (native, or docker with LOCALENV_BACKEND=docker),
    else None."""
    backend_name = os.environ.get("LOCALENV_BACKEND", "native")
    if backend_name == "docker":
        from localenv.docker_backend import DockerBackend

        backend = DockerBackend(settings, manifests, progress)
    else:
        from localenv.native_backend import NativeBackend

        backend = NativeBackend(settings, manifests, progress)
        if not backend.workdir.is_dir():  # never up in this home; looking must not make it
            return None
    try:
        return backend.running_target()
    except EnvironmentProblem:
        return None


@contextmanager
def session_server(mode: str = "auto", progress=None, home=None):
    """Yield (target, where): where says which server it is, for the report header."""
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
            yield target, f"localenv's server on {target.host}:{target.port} ({settings.home})"
            return
        if mode == "localenv":
            raise EnvironmentProblem(f"no localenv server is running for {settings.home}. Fix: localenv up")
    scratch = memory_scratch()
    with NativeTarget(manifests, progress=progress, scratch=scratch) as target:
        where = f"a throwaway embedded server on {target.host}:{target.port}"
        yield target, where + (f", its data in memory ({scratch})" if scratch else "")


# A throwaway server's data is disposable: in memory it costs no disk writes, and a clone is
# a copy of some 300 files (measured here: 15 ms in /dev/shm, up to 280 ms on a busy disk).
MEMORY_FS = Path("/dev/shm")
MEMORY_NEEDED = 1024 * 1024 * 1024  # the server, its template and a full pool of clones (32 of 8 MB), with room


def memory_scratch() -> Path | None:
    """/dev/shm where it is a writable memory file system with room; else None (the disk).
    LOCALENV_SCRATCH names another folder, or "disk" for the default temporary folder."""
    chosen = os.environ.get("LOCALENV_SCRATCH")
    if chosen:
        return None if chosen == "disk" else Path(chosen)
    try:
        stat = os.statvfs(MEMORY_FS)
    except OSError:
        return None
    if not os.access(MEMORY_FS, os.W_OK) or stat.f_bavail * stat.f_frsize < MEMORY_NEEDED:
        return None
    return MEMORY_FS
