"""The laptop database on the embedded PostgreSQL 14: the conformance suite's native target,
kept in LOCALENV_HOME/native and left running (detached) until `down`."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from conformance.errors import EnvironmentProblem
from conformance.targets.native import NativeTarget
from localenv.backend import Backend, Status, UpResult, dir_size
from localenv.connection import write_pgpass
from localenv.state import State


class LaptopTarget(NativeTarget):
    """The native target with the laptop's backup folder in place of the CronJob's PVC."""

    def __init__(self, *args, backups: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self._backups = backups

    @property
    def backup_dir(self) -> Path:
        return self._backups


class NativeBackend(Backend):
    name = "native"

    def _target(self, pg_major: int | None = None) -> LaptopTarget:
        # The major: the one asked for, else the one the data is of (after `upgrade`), else the plan's.
        major = pg_major or self.settings.pg_major or State.load(self.state_file).pg_major or None
        return LaptopTarget(self.manifests, workdir=self.workdir, port=self.settings.port,
                            prefer_port=self.settings.preferred_port, progress=self.progress,
                            detach=True, backups=self.settings.backups, pg_major=major)

    def opened(self, pg_major: int | None = None) -> LaptopTarget:
        """The target of this home's data directory, found but not started."""
        target = self._target(pg_major)
        target.open()
        return target

    def running_target(self) -> LaptopTarget:
        target = self.opened()
        if not target.server.running():
            raise EnvironmentProblem("the laptop database is not running. Fix: localenv up")
        return target

    def tools(self, target: LaptopTarget):
        return target.binaries

    # -- lifecycle ------------------------------------------------------------------------
    def up(self) -> UpResult:
        target = self.opened()
        state = State.load(self.state_file)
        if target.server.running():
            if not state.schema_done:  # an earlier `up` stopped before the schema was applied
                target.ensure_database()
            notes = self.ensure_schema(target, state)
            return UpResult(self.endpoint_of(target), already_running=True, created=False, notes=tuple(notes))
        datadir = target.server.datadir
        if state.initdb_started and not state.initdb_done and datadir.exists():
            # Our own first `up` was interrupted before the server ever ran: nothing of the
            # user's can be in there. (A directory we did not create is never removed.)
            self.progress("a first start was interrupted before it finished; initialising again")
            shutil.rmtree(datadir)
        created = not target.server.initialized
        if created:
            state.initdb_started = True
            state.save(self.state_file)
        started = False
        try:
            target.start()
            started = True
            if not state.initdb_done:
                state.initdb_done = True
                state.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
                state.pg_major = target.binaries.major
                state.save(self.state_file)
            notes = self.ensure_schema(target, state)
        except BaseException:
            if started or target.server.running():
                target.stop()  # keep=True: the data stays
            raise
        endpoint = self.endpoint_of(target)
        write_pgpass(endpoint, self.settings.pgpass)
        return UpResult(endpoint, already_running=False, created=created, notes=tuple(notes))

    def down(self) -> bool:
        target = self.opened()
        if not target.server.running():
            return False  # what a crash left, the next up's start path clears (the init container)
        target.server.stop()
        return True

    def status(self) -> Status:
        target = self.opened()
        running = target.server.running()
        ready = self.readiness(target) if running else "not checked (stopped)"
        note = ""
        if target.server.initialized and target.server.data_major() != target.binaries.major:
            note = f"the data directory holds PostgreSQL {target.server.data_major()} data"
        return Status(self.name, running, target.port if running else None, str(target.server.datadir),
                      dir_size(target.volume_dir) if target.volume_dir.exists() else 0, ready, note)

    def log_files(self) -> list[Path]:
        target = self.opened()
        log_dir = target.server.datadir / "log"
        files = sorted(log_dir.glob("*.log")) if log_dir.is_dir() else []
        return files + ([target.server.startup_log] if target.server.startup_log.exists() else [])

    def delete_data(self) -> None:
        target = self.opened()
        if target.server.running():
            raise EnvironmentProblem("the server is running; stop it first (localenv down)")
        for path in (target.volume_dir, self.state_file):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def made(self) -> list[str]:
        return []
