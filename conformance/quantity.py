"""Kubernetes quantities ("500m", "2Gi"), parsed by the kubernetes client's own
parse_quantity, loaded without importing the client package: `import kubernetes` pulls in
its config and API modules, about 0.26 s of every gate run for one small pure function."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _load():
    spec = importlib.util.find_spec("kubernetes")  # finds the package without running it
    source = Path(spec.origin).parent / "utils" / "quantity.py" if spec and spec.origin else None
    if source is None or not source.is_file():
        from kubernetes.utils import parse_quantity as fallback  # a layout we do not know: the slow way

        return fallback
    module_spec = importlib.util.spec_from_file_location("conformance._kubernetes_quantity", source)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.parse_quantity


parse_quantity = _load()
