"""What the docker target's database container is, read back from the engine and from inside
it: the facts the container checks judge, and the server's log files."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def container_facts(target):
    """The database container as the engine applied it, and as seen from inside."""
    import psycopg

    from conformance.live.container_checks import ContainerFacts

    container = target._container
    container.reload()
    attrs = container.attrs
    host, config = attrs.get("HostConfig") or {}, attrs.get("Config") or {}

    def run(*argv: str) -> tuple[int, str]:
        result = container.exec_run(list(argv))
        return result.exit_code, result.output.decode(errors="replace").strip()

    _, uid = run("id", "-u")
    _, gid = run("id", "-g")
    _, status = run("cat", "/proc/1/status")
    cap_bnd = next((line.split()[1] for line in status.splitlines() if line.startswith("CapBnd:")), "")
    _, mounts_text = run("cat", "/proc/mounts")
    root_options = next((line.split()[3] for line in mounts_text.splitlines()
                         if len(line.split()) > 3 and line.split()[1] == "/"), "")
    claims = {target.volume_name(c): c for c in target.claims()}
    mounts = {}
    for m in attrs.get("Mounts") or []:
        if m.get("Type") == "volume":
            name = m.get("Name")
            # An unnamed one is the image's VOLUME: it goes with the container.
            mounts[m["Destination"]] = f"claim {claims[name]}" if name in claims else \
                f"the image's anonymous volume {name[:12]}"
        else:
            mounts[m["Destination"]] = f"{m.get('Type')} {m.get('Source')}"
    for path in host.get("Tmpfs") or {}:
        mounts[path] = "tmpfs"
    with psycopg.connect(**target.conninfo("superuser")) as conn:
        data_directory = conn.execute("SHOW data_directory").fetchone()[0]
    return ContainerFacts(
        user=config.get("User") or "", read_only=bool(host.get("ReadonlyRootfs")),
        cap_drop=tuple(host.get("CapDrop") or ()),
        no_new_privileges=any(o.startswith("no-new-privileges") for o in host.get("SecurityOpt") or ()),
        memory=int(host.get("Memory") or 0), nano_cpus=int(host.get("NanoCpus") or 0),
        uid_gid=f"{uid}:{gid}", cap_bnd=cap_bnd, root_options=root_options,
        mounts=mounts, data_directory=data_directory)


def log_files(container, pgdata: str) -> dict[str, str]:
    """The server's log folder ({PGDATA}/log), file name -> text; {} where there is none."""
    import docker

    try:
        stream, _ = container.get_archive(f"{pgdata}/log")
    except docker.errors.NotFound:
        return {}
    archive = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
    return {Path(m.name).name: archive.extractfile(m).read().decode(errors="replace")
            for m in archive.getmembers() if m.isfile()}


def put_file(container, folder: str, name: str, data: bytes, user: str, mode: int = 0o600) -> None:
    """A file written into the container's folder (also while it is stopped: the engine mounts its
    volumes for the copy), owned as user ("uid[:gid]", numeric) would own it."""
    uid, _, gid = (user or "0").partition(":")
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    info.uid, info.gid = int(uid), int(gid or uid)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(info, io.BytesIO(data))
    if not container.put_archive(folder, buffer.getvalue()):
        raise OSError(f"the engine did not write {folder}/{name}")
