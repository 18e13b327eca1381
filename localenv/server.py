"""The server the clones are made on: localenv's, when one is up (the developer's laptop
database: its accounts, its configuration), else a throwaway embedded server for this process,
started the way the manifests start it and removed at the end, as pytest-postgresql's process
fixture does."""

from __future__ import annotations

import os
from contextlib import contextmanager

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
    with NativeTarget(manifests, progress=progress) as target:
        yield target, f"a throwaway embedded server on {target.host}:{target.port}"
