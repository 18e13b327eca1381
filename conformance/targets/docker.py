"""The docker target: the StatefulSet's own image, env, args, user, limits and mounts (see
container_spec.py), on a Docker network where the Services' DNS names resolve to it, so the
Job's and CronJob's scripts run unchanged as containers of their own images.

Two modes. Ephemeral (the conformance suite): everything is named after a random token,
testcontainers' reaper removes it if this process dies, and stop() removes container, data
volume, network and work directory. Persistent (localenv): fixed names, no reaper; stop()
stops and removes the container but keeps the data volume, so the next start finds the data.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from conformance import timeouts, workload
from conformance.errors import EnvironmentProblem
from conformance.manifests import Manifests
from conformance.pg import ports
from conformance.plan import figure
from conformance.targets import configmaps, docker_engine, docker_janitor, secret_volumes
from conformance.targets.base import Target
from conformance.targets.container_spec import ContainerSpec, container_spec
from conformance.targets.waiting import wait_until

LOCAL_HOST = "127.0.0.1"
LABEL = "io.phonebill.product-change-db"


class DockerTarget(Target):
    name = "docker"

    def __init__(self, manifests: Manifests, keep: bool = False, progress=None, workdir: Path | None = None,
                 prefix: str | None = None, persistent: bool = False, port: int | None = None,
                 prefer_port: int | None = None, pg_major: int | None = None):
        """pg_major: the major the manifests' images run (upgrade/pgNN/), for the checks."""
        super().__init__(manifests, pg_major)
        self.db = workload.database(manifests)
        self.persistent = persistent
        self.keep = keep or persistent
        self.prefix = prefix or f"pc-conformance-{secrets.token_hex(4)}"
        self.progress = progress or (lambda message: None)
        self._given_workdir = workdir
        self.workdir: Path = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        if workdir is None:
            docker_janitor.mark(self.workdir)  # a killed run's folder is swept by the next one
        self._given_port = port
        self._prefer_port = prefer_port
        self._host_port: int | None = None
        self._client = None
        self._container = None
        self._script_count = 0
        self.fresh_volumes: set[str] = set()  # data volumes this start created (no data yet)
        # Who the Job's and CronJob's containers run as; None: as the manifests say. localenv
        # sets the laptop user, whose own folder the dumps go to and who must read them.
        self.script_user: str | None = None
        self._resolved: dict[str, str] = {}
        self._owner = docker_janitor.owner()

    # -- names and layout: pure, unit-tested ----------------------------------------------
    @property
    def container_name(self) -> str:
        return f"{self.prefix}-db"

    @property
    def network_name(self) -> str:
        return f"{self.prefix}-net"

    def volume_name(self, claim: str) -> str:
        return f"{self.prefix}-{claim}"

    def config_dir(self, volume: str) -> Path:
        return self.workdir / "config" / volume

    @property
    def pgdata(self) -> str:
        return self.db.env["PGDATA"]

    def aliases(self) -> list[str]:
        """The names the cluster's DNS gives the database: every Service selecting it, short,
        namespaced and fully qualified, so PGHOST in the Job works unchanged."""
        namespace = figure("namespace").expected
        names = []
        for svc in self.manifests.of_kind("Service"):
            short = svc.name
            names += [short, f"{short}.{namespace}", f"{short}.{namespace}.svc", f"{short}.{namespace}.svc.cluster.local"]
        return names

    def labels(self) -> dict[str, str]:
        return {LABEL: self.prefix}

    def _engine_labels(self, labels: dict[str, str]) -> dict[str, str]:
        """Ephemeral runs carry testcontainers' session labels (its reaper, where it runs,
        removes what this process leaves if it dies) and our owner label (the next run's
        sweep removes it where no reaper could run)."""
        if self.persistent:
            return labels
        from testcontainers.core.labels import create_labels

        return {**create_labels("", labels), docker_janitor.LABEL_OWNER: self._owner}

    def secret_dir(self, volume: str) -> Path:
        return self.workdir / "secrets" / volume

    def _secret_sources(self, container: workload.Container, prefix: str = "") -> dict[str, str]:
        """Write the Secret volumes container mounts as host folders (for a bind mount): the
        kubelet's group (fsGroup) and mode where we may set them, else readable by the
        container's user whoever it is."""
        fs_group = workload.pod_spec(container.owner).get("securityContext", {}).get("fsGroup")
        sources = {}
        for mount in container.mounts():
            if mount.source.get("secret"):
                folder = self.secret_dir(prefix + mount.volume)
                secret_volumes.materialize(container, mount, folder, fs_group=fs_group,
                                           others_read=os.geteuid() != 0)
                sources[mount.volume] = str(folder)
        return sources

    def _pod_sources(self, container: workload.Container) -> dict[str, str]:
        """Where a container of the database's pod finds its volumes: the ConfigMaps' folders,
        the claims' Docker volumes, the Secrets' files."""
        sources: dict[str, str] = {}
        claims = set(self.claims())
        for mount in container.mounts():
            if mount.source.get("configMap"):
                sources[mount.volume] = str(self.config_dir(mount.volume))
            elif mount.volume in claims or mount.source.get("persistentVolumeClaim") is not None:
                sources[mount.volume] = self.volume_name(mount.volume)
        sources.update(self._secret_sources(container))
        return sources

    def db_spec(self) -> ContainerSpec:
        return container_spec(self.db, self.container_name, self._pod_sources(self.db), labels=self.labels())

    def init_specs(self) -> list[ContainerSpec]:
        """The pod's init containers (the stale-lock cleanup), on the same volumes."""
        return [container_spec(c, f"{self.prefix}-init-{c.name}", self._pod_sources(c), labels=self.labels())
                for c in workload.init_containers(self.manifests, self.db.owner)]

    def script_spec(self, container: workload.Container, env: dict | None = None,
                    mounts: dict[str, Path] | None = None) -> ContainerSpec:
        sources: dict[str, str] = {}
        by_path = {m.path: m for m in container.mounts()}
        for mount in container.mounts():
            if mount.source.get("configMap"):
                sources[mount.volume] = str(self.sql_dir)
            elif mount.source.get("persistentVolumeClaim") is not None:
                sources[mount.volume] = str(self.backup_dir)
        sources.update(self._secret_sources(container, prefix=f"{container.owner.name}-"))
        for path, local in (mounts or {}).items():
            if path not in by_path:
                raise ValueError(f"{container.owner.ref} container {container.name} mounts nothing at {path}")
            sources[by_path[path].volume] = str(Path(local).absolute())
        self._script_count += 1
        name = f"{self.prefix}-{container.owner.name}-{self._script_count}"
        spec = container_spec(container, name, sources, env=env, labels=self.labels())
        if self.script_user is not None:
            spec = replace(spec, user=self.script_user, group_add=())
        return spec

    def sidecars(self) -> list[workload.Container]:
        return [c for c in workload.containers(self.manifests, self.db.owner) if c.name != self.db.name]

    def sidecar_specs(self) -> list[ContainerSpec]:
        """The pod's other containers; they join the database container's network namespace,
        as containers of one pod share one, so 127.0.0.1:5432 is the server for them too."""
        return [container_spec(c, self.sidecar_name(c), self._secret_sources(c), labels=self.labels())
                for c in self.sidecars()]

    def sidecar_name(self, container: workload.Container) -> str:
        return f"{self.prefix}-{container.name}"

    def port_binding(self) -> dict:
        """Published on loopback only: the dev passwords must not reach the LAN. The sidecars'
        ports are published here too: the pod's network belongs to this container."""
        port = str(figure("port").expected)
        binding = {f"{port}/tcp": (LOCAL_HOST, self._choose_port())}
        for c in self.sidecars():
            for p in c.spec.get("ports") or []:
                binding[f"{p['containerPort']}/{p.get('protocol', 'TCP').lower()}"] = (LOCAL_HOST, None)
        return binding

    def _choose_port(self) -> int | None:
        return ports.choose(self._given_port, self._prefer_port, LOCAL_HOST)  # None: Docker picks one

    # -- engine -----------------------------------------------------------------------------
    def _docker(self):
        if self._client is None:
            docker_engine.require()
            import docker

            self._client = docker.from_env(timeout=timeouts.IMAGE_PULL)
        return self._client

    def _image(self, image: str) -> str:
        """What the engine runs for an image the manifests name: the image itself where it is
        here or can be pulled, else its local stand-in (said once, and kept for the report)."""
        if image not in self._resolved:
            from conformance.images.resolve import resolve

            resolved = resolve(self._docker(), image, self.progress)
            self._resolved[image] = resolved.run
            if resolved.note:
                self.notes.append(resolved.note)
        return self._resolved[image]

    def _create_kwargs(self, spec: ContainerSpec) -> dict:
        kwargs = spec.docker_kwargs()
        kwargs["image"] = self._image(spec.image)
        kwargs["labels"] = self._engine_labels(kwargs["labels"])
        return kwargs

    def _ensure_network(self):
        import docker

        client = self._docker()
        try:
            return client.networks.get(self.network_name)
        except docker.errors.NotFound:
            return client.networks.create(self.network_name, labels=self._engine_labels(self.labels()))

    def _ensure_volume(self, name: str) -> None:
        import docker

        client = self._docker()
        try:
            client.volumes.get(name)
        except docker.errors.NotFound:
            client.volumes.create(name, labels=self._engine_labels(self.labels()))
            self.fresh_volumes.add(name)

    def _existing(self):
        import docker

        try:
            return self._docker().containers.get(self.container_name)
        except docker.errors.NotFound:
            return None

    # -- lifecycle ------------------------------------------------------------------------
    def _materialize(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for mount in self.db.mounts():
            if mount.source.get("configMap"):
                configmaps.materialize(self.manifests, mount, self.config_dir(mount.volume))
        configmaps.write_schema_sql(self.manifests, self.sql_dir)
        self.backup_dir.mkdir(exist_ok=True)
        # The scripts run as the pod's non-root user and must write here, as on the PVC.
        self.backup_dir.chmod(0o777)

    def start(self) -> None:
        if not self.persistent:
            docker_janitor.start_reaper(self._docker(), self.progress)
            atexit.register(self.stop_quietly)
        existing = self._existing()
        if existing is not None:
            existing.remove(force=True)  # a stopped container of an older spec; the volume stays
        self._materialize()
        spec = self.db_spec()
        kwargs = self._create_kwargs(spec)
        network = self._ensure_network()
        for mount in spec.mounts:
            if mount.kind == "volume":
                self._ensure_volume(mount.source)
        self.run_init_containers()
        self.progress(f"starting {kwargs['image']} as {spec.name}")
        self._container = self._docker().containers.create(
            **kwargs, ports=self.port_binding(), detach=True, network=network.name,
            networking_config={network.name: self._docker().api.create_endpoint_config(aliases=self.aliases())},
        )
        self._container.start()
        self._start_sidecars()
        self.wait_ready()

    def _start_sidecars(self) -> None:
        """(Re)create the sidecars in the database container's network namespace: a namespace
        does not outlive its container, so they are made anew whenever it starts."""
        import docker

        for spec in self.sidecar_specs():
            kwargs = self._create_kwargs(spec)
            self._remove_named(spec.name)
            try:
                self._docker().containers.create(**kwargs, detach=True,
                                                 network_mode=f"container:{self._container.id}").start()
            except docker.errors.APIError:
                self._container.reload()
                if self._container.status in ("exited", "dead"):  # the server stopped at once: say why
                    raise EnvironmentProblem(self._exit_report()) from None
                raise

    def run_init_containers(self) -> None:
        """As the kubelet does in every new pod: each init container to completion, in order,
        before the server starts; one that fails stops the start (the pod would stay Init)."""
        from conformance.targets import docker_run

        self.init_said = []
        for spec in self.init_specs():
            self._remove_named(spec.name)
            proc = docker_run.to_completion(self._docker(), self._create_kwargs(spec), timeouts.SCRIPT,
                                            network_mode="none")
            self._init_container_ran(spec.name, proc)

    def _remove_named(self, name: str) -> None:
        import docker

        try:
            self._docker().containers.get(name).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass

    def metrics_url(self) -> str:
        port = f"{figure('metrics-port').expected}/tcp"
        self._container.reload()
        binding = self._container.ports.get(port) or []
        if not binding:
            from conformance.registry import Skip

            raise Skip("the database container publishes no metrics port")
        return f"http://{LOCAL_HOST}:{binding[0]['HostPort']}/metrics"

    @property
    def host(self) -> str:
        return LOCAL_HOST

    @property
    def port(self) -> int:
        if self._host_port is None:
            self._container.reload()
            binding = self._container.ports.get(f"{figure('port').expected}/tcp") or []
            if not binding:
                raise EnvironmentProblem(f"container {self.container_name} publishes no port (status {self._container.status})")
            self._host_port = int(binding[0]["HostPort"])
        return self._host_port

    def wait_ready(self) -> None:
        """Ready means the superuser's query answered through the published port."""
        import psycopg

        self._host_port = None

        def answered():
            self._container.reload()
            if self._container.status in ("exited", "dead"):
                raise EnvironmentProblem(self._exit_report())
            with psycopg.connect(**{**self.conninfo("superuser", dbname="postgres"), "connect_timeout": 3}) as conn:
                return conn.execute("SELECT 1").fetchone()[0] == 1

        wait_until(answered, f"{self.container_name} answering a query", timeouts.SERVER_READY,
                   retry_on=(psycopg.OperationalError,))

    def _exit_report(self) -> str:
        logs = self._container.logs(tail=200).decode(errors="replace")
        dump = self.workdir / f"{self.container_name}-failure.log"
        dump.write_text(logs)
        said = [line for line in logs.splitlines() if line.strip()]
        # The server's own reason (its FATAL or PANIC), not the HINT that follows it.
        tail = [line for line in said if "FATAL:" in line or "PANIC:" in line][-1:] or said[-1:] or ["(no output)"]
        return f"container {self.container_name} exited: {tail[0]} (full log: {dump})"

    def stop_server(self) -> None:
        self._container.stop(timeout=timeouts.CONTAINER_STOP)

    def kill_server(self) -> None:
        self._container.kill()  # SIGKILL to the container: every process in it at once
        self._container.wait(timeout=timeouts.CONTAINER_STOP)

    def start_server(self, new_pod: bool = True) -> None:
        if new_pod:
            self.run_init_containers()
        else:
            self.init_said = []
        self._container.start()
        self._start_sidecars()
        self.wait_ready()

    def write_data_file(self, name: str, text: str) -> None:
        """A file in PGDATA (the container stopped: what a crash can leave there), owned by the
        container's user."""
        from conformance.targets import docker_inspect

        self._container.reload()
        user = (self._container.attrs.get("Config") or {}).get("User") or "0"
        docker_inspect.put_file(self._container, self.pgdata, name, text.encode(), user)

    def second_start(self) -> subprocess.CompletedProcess:
        """While the server runs, inside its container (where its lock's PID means something):
        the init containers' commands, then the image's entrypoint with the manifests' args on
        another port. PostgreSQL must refuse it; one that is still running after the wait
        started, and the container is restarted to stop it."""
        from conformance.targets import docker_exec

        client = self._docker()
        for c in workload.init_containers(self.manifests, self.db.owner):
            proc = docker_exec.run(client, self._container.id, c.command + c.args, environment=c.env,
                                   timeout=timeouts.SCRIPT)
            if proc.returncode != 0:
                return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                                                   f"init container {c.name}: " + proc.stderr.decode(errors="replace"))
        self._container.reload()
        config = self._container.attrs.get("Config") or {}
        argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or []) + \
            ["-c", f"port={figure('port').expected + 1}", "-c", "listen_addresses="]
        try:
            proc = docker_exec.run(client, self._container.id, argv, timeout=timeouts.SECOND_SERVER)
        except subprocess.TimeoutExpired:
            self.kill_server()
            self.start_server()
            return subprocess.CompletedProcess(argv, 0, "", f"it was still running after {timeouts.SECOND_SERVER} s")
        return subprocess.CompletedProcess(argv, proc.returncode, proc.stdout.decode(errors="replace"),
                                           proc.stderr.decode(errors="replace"))

    def stop(self) -> None:
        try:
            self._stop_engine_side()
        finally:  # the local files go even when the engine refused something above
            if not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_engine_side(self) -> None:
        if self._client is None:
            return
        import docker

        client = self._client
        for sidecar in self.sidecars():  # by name: stopping writes nothing (a spec would write its Secret files)
            self._remove_named(self.sidecar_name(sidecar))
        container = self._container or self._existing()
        if container is not None:
            try:
                if self.persistent:
                    container.stop(timeout=timeouts.CONTAINER_STOP)
                container.remove(force=True, v=not self.persistent)
            except docker.errors.NotFound:
                pass
        self._container = None
        if self.persistent or not self.keep:
            # Also localenv's down: only its data volume stays; the network is made anew on up.
            try:
                client.networks.get(self.network_name).remove()
            except docker.errors.NotFound:
                pass
        if not self.persistent and not self.keep:
            for name in [self.volume_name(v) for v in self.claims()]:
                try:
                    client.volumes.get(name).remove(force=True)
                except docker.errors.NotFound:
                    pass

    def claims(self) -> list[str]:
        return workload.claim_templates(self.db.owner)

    def attach(self) -> bool:
        """Find a running container of this prefix (localenv's other commands)."""
        container = self._existing()
        if container is None or container.status != "running":
            return False
        self._container = container
        return True

    # -- what the cluster would run -------------------------------------------------------
    def run_script(self, container, env=None, mounts=None, timeout=timeouts.SCRIPT):
        """The script in a container of its own. Its ConfigMaps are written from this target's
        manifests into a folder of this run: the schema SQL as sql/ is now, not as it was when
        the server started (two runs at once each have their own)."""
        from conformance.targets import docker_run

        runs = self.workdir / "script-runs"
        runs.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{container.owner.name}-", dir=runs))
        try:
            scratch.chmod(0o755)  # the script's user in the container reads it
            given = {m.path: configmaps.materialize(self.manifests, m, scratch / m.volume)
                     for m in container.mounts() if m.source.get("configMap")}
            spec = self.script_spec(container, env, {**given, **(mounts or {})})
            return docker_run.to_completion(self._docker(), self._create_kwargs(spec), timeout,
                                            network=self.network_name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def exec_database(self, argv, stdin=b"", timeout=300):
        from conformance.targets import docker_exec

        return docker_exec.run(self._docker(), self._container.id, argv, stdin, timeout)

    def run_probe(self, probe: str) -> int:
        argv = self.db.probe_command(probe)
        if not argv:
            return -1
        self._container.reload()
        if self._container.status != "running":
            return 1  # the kubelet's exec into a stopped container fails too
        result = self._container.exec_run(argv)
        return result.exit_code

    def container_facts(self):
        """The database container as the engine applied it, and as seen from inside."""
        from conformance.targets import docker_inspect

        return docker_inspect.container_facts(self)

    def log_files(self) -> dict[str, str]:
        from conformance.targets import docker_inspect

        return docker_inspect.log_files(self._container, self.pgdata)
