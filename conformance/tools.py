"""External programs the suite can use when they are here: promtool (Debian package
`prometheus`) and postgres_exporter (Debian package `prometheus-postgres-exporter`).

Found on PATH, else in our cache; on Debian they are fetched into the cache without root
and without installing services (`apt-get download` + `dpkg-deb -x`). find() returns None,
with reason() saying why, when neither works; callers skip with that reason."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from conformance.pg.binaries import cache_root

# program -> (Debian package, path inside the package)
PROGRAMS = {
    "promtool": ("prometheus", "usr/bin/promtool"),
    "prometheus-postgres-exporter": ("prometheus-postgres-exporter", "usr/bin/prometheus-postgres-exporter"),
}
_reasons: dict[str, str] = {}


def _cached(program: str) -> Path:
    package, inner = PROGRAMS[program]
    return cache_root() / "debian" / package / inner


def find(program: str, fetch: bool = True, progress=None) -> str | None:
    on_path = shutil.which(program)
    if on_path:
        return on_path
    cached = _cached(program)
    if cached.exists():
        return str(cached)
    if fetch and _fetch(program, progress):
        return str(cached)
    return None


def reason(program: str) -> str:
    package = PROGRAMS[program][0]
    why = _reasons.get(program, "not on PATH")
    return f"{program} not found ({why}); on Debian: apt-get install {package}"


def _fetch(program: str, progress=None) -> bool:
    package, _ = PROGRAMS[program]
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        _reasons[program] = "not on PATH, and this is not a Debian system to fetch it from"
        return False
    target = cache_root() / "debian" / package
    with tempfile.TemporaryDirectory() as tmp:
        if progress:
            progress(f"fetching Debian package {package} into {target} (first use only)")
        got = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True,
                             timeout=600, check=False)
        debs = list(Path(tmp).glob(f"{package}_*.deb"))
        if got.returncode != 0 or not debs:
            last = (got.stderr or got.stdout).strip().splitlines()
            _reasons[program] = f"apt-get download {package} failed: {last[-1] if last else got.returncode}"
            return False
        staging = Path(tempfile.mkdtemp(prefix=f".{package}-", dir=_ensure(target.parent)))
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(staging)], check=True, capture_output=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        for path in [target, *target.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    return _cached(program).exists()


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path
