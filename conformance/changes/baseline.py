"""The base a change is judged against: the manifests (and sql/) at a git ref, or a folder."""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conformance import manifests as loader
from conformance.errors import InputError


@dataclass
class Baseline:
    label: str                 # what the user gave: the ref or the folder
    manifests: loader.Manifests
    sql_dir: Path | None       # None: the base has no sql/ (a folder of manifests only)
    _tmp: tempfile.TemporaryDirectory | None = None

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _git(cwd: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=not binary, timeout=120, check=False)
    except FileNotFoundError:
        raise InputError("--base: git is not installed; give a folder instead") from None


def _load(path: Path, label: str) -> loader.Manifests:
    try:
        return loader.load(path)
    except InputError as exc:
        raise InputError(f"--base {label}: its manifests cannot be read: {exc}") from None


def resolve(base: str, manifests_dir: Path, sql_dir: Path) -> Baseline:
    """A folder (of manifests, or a checkout holding manifests/) as it is; else a git ref of
    the repository that holds manifests_dir, its manifests/ and sql/ extracted to a temporary
    folder. InputError, one line, when it is neither."""
    folder = Path(base)
    if folder.is_dir():
        if (folder / manifests_dir.name).is_dir() and not any(folder.glob("*.yaml")):  # a checkout
            folder = folder / manifests_dir.name
        sql = folder.parent / "sql"  # a manifests folder's sibling sql/, unless it is ours
        same = sql.resolve() == sql_dir.resolve()
        return Baseline(base, _load(folder, base), sql if sql.is_dir() and not same else None)
    cwd = manifests_dir.resolve()
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise InputError(f"--base {base}: not a folder, and {manifests_dir} is not in a git repository")
    top_dir = Path(top.stdout.strip())
    commit = _git(top_dir, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    if commit.returncode != 0:
        if base == "HEAD" and not _git(top_dir, "rev-list", "-n", "1", "--all").stdout.strip():
            # A repository with no commit yet (pre-commit's first run): everything is new.
            empty = loader.Manifests(root=manifests_dir, objects=[], files=[], kustomization=None)
            return Baseline("HEAD (no commit yet)", empty, None)
        raise InputError(f"--base {base}: no such folder, and no such commit, branch or tag in {top_dir}")
    if not manifests_dir.resolve().is_relative_to(top_dir):
        raise InputError(f"--base {base}: {manifests_dir} is not inside the repository {top_dir}")
    wanted = [str(p.resolve().relative_to(top_dir)) for p in (manifests_dir, sql_dir) if p.resolve().is_relative_to(top_dir)]
    listed = _git(top_dir, "ls-tree", "--name-only", commit.stdout.strip(), "--", *wanted)
    present = set(listed.stdout.split())
    rel_manifests = str(manifests_dir.resolve().relative_to(top_dir))
    if rel_manifests not in present:  # before the manifests existed: everything is new
        empty = loader.Manifests(root=manifests_dir, objects=[], files=[], kustomization=None)
        return Baseline(f"{base} ({commit.stdout.strip()[:12]}, no {rel_manifests}/)", empty, None)
    tmp = tempfile.TemporaryDirectory(prefix="pc-base-")
    archive = _git(top_dir, "archive", "--format=tar", commit.stdout.strip(), "--", *sorted(present), binary=True)
    if archive.returncode != 0:
        tmp.cleanup()
        raise InputError(f"--base {base}: git archive failed: {archive.stderr.decode(errors='replace').strip()[-200:]}")
    import io

    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp.name, filter="data")
    root = Path(tmp.name)
    rel_sql = str(sql_dir.resolve().relative_to(top_dir)) if sql_dir.resolve().is_relative_to(top_dir) else None
    try:
        loaded = _load(root / rel_manifests, base)
    except InputError:
        tmp.cleanup()
        raise
    sql = root / rel_sql if rel_sql and rel_sql in present else None
    return Baseline(f"{base} ({commit.stdout.strip()[:12]})", loaded, sql, tmp)
