"""Fresh data directories from a template: initdb's output for the same binaries, superuser,
password and arguments, made once and copied after (a copy takes a fraction of initdb's
second). Cached beside the binaries; the key is what decides initdb's output, so different
binaries (by path, size and time), a changed Secret or other arguments make a new template."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

KEEP = 8  # templates kept; the oldest go first


def _root() -> Path:
    from conformance.pg.binaries import cache_root

    return cache_root() / "initdb"


def key(bindir: Path, superuser: str, password: str, args: list[str]) -> str:
    parts = [str(bindir.resolve()), superuser, hashlib.sha256(password.encode()).hexdigest(), *args]
    for tool in ("initdb", "postgres"):
        st = (bindir / tool).stat()
        parts += [str(st.st_size), str(st.st_mtime_ns)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def find(template_key: str) -> Path | None:
    path = _root() / template_key
    return path if (path / "PG_VERSION").is_file() else None


def save(template_key: str, datadir: Path) -> None:
    """Keep a copy of a fresh data directory (made by initdb just now, no server started)."""
    root = _root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o700)  # it holds the superuser's password verifier
        staging = Path(tempfile.mkdtemp(prefix=".template-", dir=root))
        shutil.copytree(datadir, staging / "d", symlinks=True)
        try:
            os.rename(staging / "d", root / template_key)
        except OSError:
            pass  # another run saved the same template first
        shutil.rmtree(staging, ignore_errors=True)
        templates = sorted((p for p in root.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime)
        for old in templates[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass  # no cache: the next initdb runs again


def copy(template: Path, datadir: Path, owner: tuple[int, int] | None) -> None:
    """The template as datadir, owned by the server account (owner: uid, gid; None: ours)."""
    shutil.copytree(template, datadir, symlinks=True)
    datadir.chmod(0o700)
    if owner is not None:
        for path in [datadir, *datadir.rglob("*")]:
            os.chown(path, *owner, follow_symlinks=False)
    os.utime(template)  # used: kept longest
