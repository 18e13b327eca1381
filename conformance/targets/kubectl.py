"""kubectl, run with one context and namespace; failures become one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

from conformance import timeouts
from conformance.errors import EnvironmentProblem


class KubectlError(EnvironmentProblem):
    """A kubectl command failed; the message names the command and kubectl's last words."""


def find(binary: str = "kubectl") -> str:
    path = shutil.which(binary)
    if path is None:
        raise EnvironmentProblem(f"{binary} not found on PATH; the kind and cluster targets need it "
                                 "(https://kubernetes.io/docs/tasks/tools/)")
    return path


@dataclass(frozen=True)
class Kubectl:
    context: str
    namespace: str
    binary: str = "kubectl"

    def argv(self, *args: str, namespaced: bool = True) -> list[str]:
        base = [self.binary, "--context", self.context]
        if namespaced:
            base += ["--namespace", self.namespace]
        return [*base, *args]

    def run(self, *args: str, input: str | None = None, check: bool = True, namespaced: bool = True,
            timeout: float = timeouts.KUBECTL) -> subprocess.CompletedProcess:
        argv = self.argv(*args, namespaced=namespaced)
        try:
            proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise KubectlError(f"kubectl {' '.join(args)}: no answer after {timeout:g} s") from None
        except FileNotFoundError:
            raise EnvironmentProblem(f"{self.binary} not found; the kind and cluster targets need kubectl") from None
        if check and proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()
            raise KubectlError(f"kubectl {' '.join(args[:3])}… failed: {last[-1] if last else proc.returncode}")
        return proc

    def json(self, *args: str, namespaced: bool = True) -> dict:
        return json.loads(self.run(*args, "-o", "json", namespaced=namespaced).stdout or "{}")

    def get(self, kind: str, name: str | None = None, namespaced: bool = True) -> dict | None:
        """The object, or None when it does not exist."""
        args = ["get", kind] + ([name] if name else [])
        proc = self.run(*args, "-o", "json", check=False, namespaced=namespaced)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            last = proc.stderr.strip().splitlines()
            raise KubectlError(f"kubectl get {kind} {name or ''}: {last[-1] if last else proc.returncode}")
        return json.loads(proc.stdout)
