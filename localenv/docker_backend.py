"""The laptop database in Docker: the StatefulSet's own image, config, user, limits and
mounts (the conformance docker target, in its persistent mode). The data lives in a named
Docker volume that `down` keeps; `reset --yes` removes it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from conformance.errors import EnvironmentProblem
from conformance.pg.binaries import locate
from conformance.targets import docker_engine
from conformance.targets.docker import DockerTarget
from localenv.backend import Backend, Status, UpResult
from localenv.connection import write_pgpass
from localenv.settings import Settings, default_home
from localenv.state import State

NAME = "product-change-db-localenv"


def prefix_for(settings: Settings) -> str:
    """Fixed Docker names for the default home; another LOCALENV_HOME gets names of its own."""
    if settings.home == default_home().absolute():
        return NAME
    return f"{NAME}-{hashlib.sha256(str(settings.home).encode()).hexdigest()[:8]}"


class DockerBackend(Backend):
    name = "docker"

    def target(self) -> DockerTarget:
        target = DockerTarget(self.manifests, workdir=self.workdir, prefix=prefix_for(self.settings), persistent=True,
                              port=self.settings.port, prefer_port=self.settings.preferred_port, progress=self.progress)
        # The dumps land in the user's own backups/ folder: the backup container runs as the
        # user (uid 999 could neither write there nor leave files the user can read).
        target.script_user = f"{os.getuid()}:{os.getgid()}"
        return target

    def _require_docker(self) -> None:
        reason = docker_engine.unavailable_reason()
        if reason:
            raise EnvironmentProblem(f"Docker is not running: {reason}. Fix: start Docker (Docker Desktop, or "
                                     "`sudo systemctl start docker`), or use the default native backend")

    def running_target(self) -> DockerTarget:
        self._require_docker()
        target = self.target()
        if not target.attach():
            raise EnvironmentProblem("the laptop database is not running. Fix: localenv --backend docker up")
        return target

    def tools(self, target):
        return locate(self.progress)

    # -- lifecycle ------------------------------------------------------------------------
    def up(self) -> UpResult:
        self._require_docker()
        target = self.target()
        already = target.attach()
        state = State.load(self.state_file)
        created = not state.initdb_done
        try:
            if not already:
                target.start()
                if target.fresh_volumes:  # removed outside localenv: a new database
                    state, created = State(), True
            if not state.initdb_done:
                state.initdb_started = state.initdb_done = True
                state.save(self.state_file)
            notes = self.ensure_schema(target, state)
        except BaseException:
            if not already:
                target.stop()  # persistent: the container goes, the data volume stays
            raise
        endpoint = self.endpoint_of(target)
        write_pgpass(endpoint, self.settings.pgpass)
        return UpResult(endpoint, already_running=already, created=created and not already, notes=tuple(notes))

    def down(self) -> bool:
        self._require_docker()
        target = self.target()
        if not target.attach():
            return False
        target.stop()
        return True

    def status(self) -> Status:
        self._require_docker()
        target = self.target()
        running = target.attach()
        ready = self.readiness(target) if running else "not checked (stopped)"
        volumes = [target.volume_name(v) for v in target.claims()]
        return Status(self.name, running, target.port if running else None,
                      f"Docker volume {', '.join(volumes)}", None, ready)

    def log_files(self) -> list[Path]:
        target = self.running_target()
        out_dir = self.workdir / "logs"
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, text in sorted(target.log_files().items()):
            path = out_dir / name
            path.write_text(text)
            paths.append(path)
        return paths

    def delete_data(self) -> None:
        self._require_docker()
        import docker

        target = self.target()
        if target.attach():
            raise EnvironmentProblem("the server is running; stop it first (localenv --backend docker down)")
        client = docker.from_env()
        # A stopped container of this home (a crash, an engine restart) would hold the volume.
        for name in [target.container_name] + [target.sidecar_name(c) for c in target.sidecars()]:
            try:
                client.containers.get(name).remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        try:
            client.networks.get(target.network_name).remove()
        except docker.errors.NotFound:
            pass
        for claim in target.claims():
            try:
                client.volumes.get(target.volume_name(claim)).remove(force=True)
            except docker.errors.NotFound:
                pass
        self.state_file.unlink(missing_ok=True)

    def made(self) -> list[str]:
        """The containers (database, sidecars), data volumes and network of this home."""
        self._require_docker()
        import docker

        target = self.target()
        client = docker.from_env()
        names = [f"container {target.container_name}"] + [f"container {target.sidecar_name(c)}" for c in target.sidecars()]
        found = []
        for item in names:
            try:
                client.containers.get(item.split(" ", 1)[1])
                found.append(item)
            except docker.errors.NotFound:
                pass
        for claim in target.claims():
            try:
                client.volumes.get(target.volume_name(claim))
                found.append(f"volume {target.volume_name(claim)}")
            except docker.errors.NotFound:
                pass
        try:
            client.networks.get(target.network_name)
            found.append(f"network {target.network_name}")
        except docker.errors.NotFound:
            pass
        return found
