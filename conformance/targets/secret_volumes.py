"""Secret volumes as local folders: the files a pod would see at the mount, with the mode and
group the kubelet gives them (defaultMode or the item's mode; group fsGroup)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conformance import workload

DEFAULT_MODE = 0o644  # the kubelet's when the volume says none


def _modes(mount: workload.Mount) -> dict[str, int]:
    source = mount.source.get("secret") or {}
    default = source.get("defaultMode", DEFAULT_MODE)
    return {i.get("path"): i.get("mode", default) for i in source.get("items") or []} | {"": default}


def materialize(container: workload.Container, mount: workload.Mount, target: Path, fs_group: int | None = None,
                others_read: bool = False) -> Path:
    """Write the files container sees under mount into target, replacing what it held.
    fs_group: give them that group, as the kubelet does (needs root; else left as they are).
    others_read: let any user read them, for a container user that is neither their owner nor
    in their group (a Docker container of another uid, when we cannot change the group)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    modes = _modes(mount)
    chown = fs_group is not None and os.geteuid() == 0
    prefix = mount.path.rstrip("/") + "/"
    for path, file in container.files.items():
        if not path.startswith(prefix) or file.value is None:
            continue  # a missing Secret or key: plan-5.4-secret-refs reports it
        rel = path[len(prefix):]
        local = target / rel
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(file.value, encoding="utf-8")
        mode = modes.get(rel, modes[""])
        if chown:
            os.chown(local, 0, fs_group)
        local.chmod(mode | (0o444 if others_read else 0))
    if chown:
        os.chown(target, 0, fs_group)
    target.chmod(0o755 if others_read or chown else 0o700)
    return target
