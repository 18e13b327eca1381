"""Cleaning up after runs that could not clean up themselves, where testcontainers' reaper
(Ryuk) is not there to do it: its image cannot be pulled on a machine without a registry.

Every resource of an ephemeral run carries an owner label naming the process that made it
(host, PID and that process's start time, so a reused PID is not mistaken for it). A run
that was SIGKILLed leaves them behind; the next run's sweep() removes every labelled
container, network and volume whose owner process is gone.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import psutil

LABEL_OWNER = "io.phonebill.product-change-db.owner"
OWNER_FILE = ".owner"  # in a run's temporary folder: the same owner, for the folder's sweep
FOLDER_PATTERN = "pc-conformance-*"


def owner(pid: int | None = None) -> str:
    """This process (or pid) as a label: host, PID and start time, so a reused PID is not it."""
    me = psutil.Process(pid or os.getpid())
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
    """Remove what dead owners left (containers first: a network in use cannot go); return
    what was removed, as "kind name"."""
    import docker

    flt = {"label": LABEL_OWNER}
    kinds = (("container", lambda: client.containers.list(all=True, filters=flt), {"force": True, "v": True}),
             ("network", lambda: client.networks.list(filters=flt), {}),
             ("volume", lambda: client.volumes.list(filters=flt), {"force": True}))
    removed = sweep_folders()
    for kind, listing, options in kinds:
        for item in listing():
            labels = (item.attrs.get("Config") or {}).get("Labels") if kind == "container" else item.attrs.get("Labels")
            if alive((labels or {}).get(LABEL_OWNER, "")):
                continue
            try:
                item.remove(**options)
                removed.append(f"{kind} {item.name}")
            except docker.errors.NotFound:
                pass
    return removed


def mark(folder: Path) -> None:
    """Name this process as the owner of a temporary folder it made."""
    (folder / OWNER_FILE).write_text(owner(), encoding="utf-8")


def sweep_folders(root: Path | None = None) -> list[str]:
    """Remove the temporary folders of runs whose owner is gone (a SIGKILLed run cannot)."""
    removed = []
    for folder in sorted(Path(root or tempfile.gettempdir()).glob(FOLDER_PATTERN)):
        try:
            label = (folder / OWNER_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            continue  # not marked: not ours to judge
        if not alive(label):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(f"folder {folder}")
    return removed


def start_reaper(client, progress) -> None:
    """Sweep what killed runs left, then testcontainers' reaper where its image is here or can be
    pulled; otherwise our own owner labels are the safety net, swept by the next run."""
    import docker
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import Reaper

    for leftover in sweep(client):
        progress(f"removed {leftover}, left by a run that was killed")
    if testcontainers_config.ryuk_disabled:
        return
    image = testcontainers_config.ryuk_image
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(image)
        except docker.errors.APIError:
            progress(f"no reaper ({image} cannot be pulled): a killed run's containers are removed by the next run")
            return
    Reaper.get_instance()
