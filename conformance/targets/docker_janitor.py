"""Cleaning up after runs that could not clean up themselves, where testcontainers' reaper
(Ryuk) is not there to do it: its image cannot be pulled on a machine without a registry.

Every resource of an ephemeral run carries an owner label naming the process that made it
(host, PID and that process's start time, so a reused PID is not mistaken for it). A run
that was SIGKILLed leaves them behind; the next run's sweep() removes every labelled
container, network and volume whose owner process is gone.
"""

from __future__ import annotations

import os
import socket

import psutil

LABEL_OWNER = "io.phonebill.product-change-db.owner"


def owner() -> str:
    me = psutil.Process(os.getpid())
    return f"{socket.gethostname()}/{me.pid}/{me.create_time():.0f}"


def alive(label: str) -> bool:
    """True unless the label names a process of this host that is gone."""
    try:
        host, pid, started = label.split("/")
        if host != socket.gethostname():
            return True  # another machine's run on a shared engine: not ours to judge
        proc = psutil.Process(int(pid))
        return f"{proc.create_time():.0f}" == started
    except (ValueError, psutil.NoSuchProcess):
        return False
    except psutil.AccessDenied:
        return True


def sweep(client) -> list[str]:
    """Remove what dead owners left; return what was removed (kind and name)."""
    import docker

    removed = []
    flt = {"label": LABEL_OWNER}
    for container in client.containers.list(all=True, filters=flt):
        if not alive(container.labels.get(LABEL_OWNER, "")):
            try:
                container.remove(force=True, v=True)
                removed.append(f"container {container.name}")
            except docker.errors.NotFound:
                pass
    for network in client.networks.list(filters=flt):
        if not alive((network.attrs.get("Labels") or {}).get(LABEL_OWNER, "")):
            try:
                network.remove()
                removed.append(f"network {network.name}")
            except docker.errors.NotFound:
                pass
    for volume in client.volumes.list(filters=flt):
        if not alive((volume.attrs.get("Labels") or {}).get(LABEL_OWNER, "")):
            try:
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
            except docker.errors.NotFound:
                pass
    return removed
