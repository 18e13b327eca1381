"""localenv driven as a developer drives it: its command line, in a home of its own and on a
port chosen free at the start of a test. The fixture `localenv` is in conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from conformance.pg import ports

ROOT = Path(__file__).resolve().parent.parent


class Localenv:
    def __init__(self, home: Path, port: int):
        self.home = home
        self.env = {**os.environ, "LOCALENV_HOME": str(home), "LOCALENV_PORT": str(port)}
        self.port = port

    def run(self, *args: str, ok: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "localenv", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if ok:
            assert proc.returncode == 0, f"localenv {' '.join(args)}: rc {proc.returncode}\n{proc.stdout}{proc.stderr}"
        return proc

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "localenv", *args], cwd=ROOT, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sql(self, query: str, role: str = "app") -> str:
        return self.run("psql", "--as", role, "-qAtc", query).stdout.strip()

    @property
    def datadir(self) -> Path:
        return self.home / "native" / "volume" / "pgdata"

    def servers(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["name"] == "postgres" and str(self.home) in cmdline:
                found.append(proc)
        return found




def new_localenv(root: Path | None = None) -> "Localenv":
    # Not tmp_path: when the tests run as root the server runs as another account, which
    # must traverse the home's parents (pytest's base temp directory is mode 0700).
    home = Path(tempfile.mkdtemp(prefix="localenv-test-", dir=root))
    home.chmod(0o711)
    return Localenv(home, ports.free_port())


def remove_localenv(env: "Localenv") -> None:
    env.run("down", ok=False)
    for proc in env.servers():  # a test that left a server behind must not leak it
        proc.kill()
    shutil.rmtree(env.home, ignore_errors=True)
