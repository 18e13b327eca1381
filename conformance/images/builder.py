"""Build the stand-in images from Debian's packages, cached: an image is rebuilt only when its
inputs (base packages, Dockerfile, entrypoint, binaries) change, which its labels record.

The base is a `debootstrap --variant=minbase` root file system made into an image with
`docker import` (needs root and Debian's debootstrap); the stand-ins are `docker build`s on
top of it, so nothing is pulled from any registry.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from conformance import timeouts, tools, workload
from conformance.errors import EnvironmentProblem
from conformance.images import standins
from conformance.pg.binaries import cache_root, locate

MIRROR_ENV = "CONFORMANCE_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Built:
    image: str      # what the manifests name
    name: str       # the stand-in's name
    rebuilt: bool
    built_from: str


def manifest_images(manifests) -> list[str]:
    """Every image the manifests' workloads name, once, in order."""
    seen: list[str] = []
    for obj in manifests.objects:
        if obj.kind in workload.POD_SPEC:
            for c in workload.containers(manifests, obj):
                if c.image and c.image not in seen:
                    seen.append(c.image)
    return seen


def _labels(image) -> dict:
    return image.labels or {}


def existing(client, name: str):
    import docker

    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        return None


def recipe_for(image: str, progress=None) -> standins.Recipe | None:
    kind = standins.kind_of(image)
    if kind == "postgres":
        from conformance.workload import major_of_image

        binaries = locate(progress, major_of_image(image))
        return standins.postgres_recipe(image, binaries, binaries.bindir.parent)
    if kind == "exporter":
        path = tools.find("prometheus-postgres-exporter", progress=progress)
        if path is None:
            raise EnvironmentProblem(f"cannot build a stand-in for {image}: {tools.reason('prometheus-postgres-exporter')}")
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"version (\S+)", out.stdout + out.stderr)
        return standins.exporter_recipe(image, Path(path), match.group(1) if match else "unknown")
    return None


# -- the base ------------------------------------------------------------------------------

def ensure_base(client, progress) -> bool:
    """The debootstrap base image; True when it was built now."""
    if existing(client, standins.base_tag()) is not None:
        return False
    if os.geteuid() != 0:
        raise EnvironmentProblem("building the stand-in images' base needs root (debootstrap). "
                                 "Fix: sudo .venv/bin/python -m conformance images build")
    debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None)
    if debootstrap is None:
        raise EnvironmentProblem("building the stand-in images needs debootstrap. Fix: apt-get install debootstrap")
    work = Path(tempfile.mkdtemp(prefix="pc-standin-base-", dir=_workroot()))
    try:
        rootfs = work / "rootfs"
        mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)
        progress(f"debootstrap {standins.SUITE} (minbase) from {mirror} into {rootfs} (about 40 s)")
        proc = subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(standins.BASE_PACKAGES)}",
                               standins.SUITE, str(rootfs), mirror], capture_output=True, text=True,
                              timeout=timeouts.IMAGE_BUILD, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            raise EnvironmentProblem(f"debootstrap failed: {tail[-1] if tail else proc.returncode} "
                                     f"(log: {rootfs}/debootstrap/debootstrap.log)")
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        archive = work / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        progress(f"docker import -> {standins.base_tag()}")
        repository, tag = standins.base_tag().rsplit(":", 1)
        client.api.import_image_from_file(str(archive), repository=repository, tag=tag,
                                          changes=[f'LABEL {standins.LABEL_INPUTS}="{standins.base_inputs()}"',
                                                   'CMD ["bash"]'])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def _workroot() -> Path:
    root = cache_root() / "images"
    root.mkdir(parents=True, exist_ok=True)
    return root


# -- the stand-ins -------------------------------------------------------------------------

def _context(recipe: standins.Recipe) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = recipe.dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for arcname, local in recipe.files.items():
            tar.add(str(local), arcname=arcname)
    buffer.seek(0)
    return buffer


def up_to_date(client, recipe: standins.Recipe) -> bool:
    image = existing(client, recipe.name)
    return image is not None and _labels(image).get(standins.LABEL_INPUTS) == recipe.inputs


def build(client, recipe: standins.Recipe, progress) -> Built:
    if up_to_date(client, recipe):
        return Built(recipe.image, recipe.name, False, recipe.built_from)
    ensure_base(client, progress)
    progress(f"building {recipe.name} (stand-in for {recipe.image})")
    import docker

    labels = {standins.LABEL_STANDIN_FOR: recipe.image, standins.LABEL_INPUTS: recipe.inputs,
              standins.LABEL_FROM: recipe.built_from,
              standins.LABEL_BUILT: datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    try:
        client.images.build(fileobj=_context(recipe), custom_context=True, tag=recipe.name, labels=labels,
                             rm=True, forcerm=True, pull=False, timeout=timeouts.IMAGE_BUILD)
    except docker.errors.BuildError as exc:
        raise EnvironmentProblem(f"building {recipe.name} failed: {exc.msg}") from None
    return Built(recipe.image, recipe.name, True, recipe.built_from)


def build_all(client, manifests, progress) -> list[Built]:
    out = []
    for image in manifest_images(manifests):
        recipe = recipe_for(image, progress)
        if recipe is None:
            progress(f"no stand-in recipe for {image}; it must be pulled")
            continue
        out.append(build(client, recipe, progress))
    if any(b.rebuilt for b in out):
        _prune(client)
    return out


def _prune(client) -> None:
    """Bases of older inputs, and the stand-ins a rebuild replaced: nothing runs them now."""
    import docker

    current = standins.base_tag()
    for image in client.images.list(name=f"{standins.REPOSITORY}/{standins.SUITE}-base"):
        for tag in image.tags:
            if tag != current:
                try:
                    client.images.remove(tag)
                except docker.errors.APIError:
                    pass  # still used by a container; the next build tries again
    client.images.prune(filters={"dangling": True, "label": standins.LABEL_INPUTS})


def describe(image) -> str:
    """'built <date> from <inputs>' for a stand-in image."""
    labels = _labels(image)
    return f"built {labels.get(standins.LABEL_BUILT, '?')} from {labels.get(standins.LABEL_FROM, '?')}"
