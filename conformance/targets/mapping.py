"""How a container's view of the world maps onto this machine: the one place it is stated.

In the cluster the Job reaches the server at the Service's DNS name on port 5432, the server
reads its config from a ConfigMap mounted at a container path, and scripts find pg tools on
PATH. Locally: the host is 127.0.0.1, the port is the one the native server got, every mount
path is a local directory, and PATH starts with the PostgreSQL 14 binaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conformance.plan import figure

LOCAL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class LocalMapping:
    port: int
    bindir: Path
    paths: dict[str, Path] = field(default_factory=dict)  # container path -> local path
    host: str = LOCAL_HOST
    container_port: int = field(default_factory=lambda: figure("port").expected)  # the server, inside the pod

    def address(self, value: str) -> str:
        """The pod's loopback address of the server (a sidecar's view) -> the local one."""
        for host in ("127.0.0.1", "localhost"):
            value = value.replace(f"{host}:{self.container_port}", f"{self.host}:{self.port}")
        return value

    def path(self, value: str) -> str:
        """A container path (or text holding one) with its mount replaced by the local one."""
        for container_path in sorted(self.paths, key=len, reverse=True):
            local = str(self.paths[container_path])
            if value == container_path or value.startswith(container_path + "/"):
                return local + value[len(container_path):]
            if "=" in value:  # -c config_file=/etc/postgresql/postgresql.conf
                key, _, rest = value.partition("=")
                if rest == container_path or rest.startswith(container_path + "/"):
                    return f"{key}={local}{rest[len(container_path):]}"
        return value

    def env(self, env: dict[str, str]) -> dict[str, str]:
        out = {k: self.address(self.path(v)) for k, v in env.items()}
        if "PGHOST" in out:
            out["PGHOST"] = self.host
        out["PGPORT"] = str(self.port)
        out["PATH"] = f"{self.bindir}:/usr/local/bin:/usr/bin:/bin"
        out.setdefault("LC_ALL", "C.UTF-8")
        out.setdefault("TZ", "UTC")
        return out

    def in_text(self, text: str) -> str:
        """A script or shell command line (sh -c '...') with each container mount path written
        in it, and `-p <the server's port>`, replaced: a script that writes /backup/x must not
        write this machine's /backup."""
        import re

        for container_path in sorted(self.paths, key=len, reverse=True):
            if container_path in ("", "/"):
                continue
            text = re.sub(rf"(?<![\w./-]){re.escape(container_path)}(?=/|[\s\"';:)|&]|$)",
                          lambda m, local=str(self.paths[container_path]): local, text)
        return re.sub(rf"(?<![\w-])(-p\s*|--port[=\s])({self.container_port})\b",
                      lambda m: f"{m.group(1)}{self.port}", text)

    def argv(self, argv: list[str]) -> list[str]:
        return [self.in_text(self.path(a)) if any(c.isspace() for c in a) else self.path(a) for a in argv]

    def server_overrides(self, socket_dir: Path) -> list[str]:
        """Settings that differ from the container's because this is a shared machine: the
        port we were given, loopback only (a laptop must not offer dev passwords to its LAN),
        and a private socket directory. Passed after config_file, so they win over it."""
        return ["-c", f"port={self.port}", "-c", f"listen_addresses={self.host}",
                "-c", f"unix_socket_directories={socket_dir}"]
