"""A throw-away copy of the project's manifests, sql and docs, and ways to break it."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


class ProjectCopy:
    def __init__(self, root: Path):
        self.root = root
        for name in ("manifests", "sql", "docs"):
            shutil.copytree(ROOT / name, root / name)

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def sql(self) -> Path:
        return self.root / "sql"

    def set(self, file: str, kind: str, path: tuple, value, name: str | None = None) -> None:
        """Set (or with value=DELETE remove) the field at path of the object in file."""
        target = self.manifests / file
        docs = list(yaml.safe_load_all(target.read_text()))
        for doc in docs:
            if doc and doc.get("kind") == kind and (name is None or doc["metadata"]["name"] == name):
                node = doc
                for part in path[:-1]:
                    node = node[part]
                if value is DELETE:
                    del node[path[-1]]
                else:
                    node[path[-1]] = value
                break
        else:
            raise AssertionError(f"no {kind} in {file}")
        target.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def replace(self, relpath: str, old: str, new: str) -> None:
        target = self.root / relpath
        text = target.read_text()
        assert old in text, f"{old!r} not in {relpath}"
        target.write_text(text.replace(old, new, 1))

    def conf(self, old: str, new: str) -> None:
        """Replace a whole setting line of postgresql.conf (never a comment that quotes it)."""
        indent = "\n    "
        new_lines = indent.join(new.splitlines())
        self.replace("manifests/postgresql-product-change-config.yaml", f"{indent}{old}\n", f"{indent}{new_lines}\n")

    def unshare(self, relpath: str) -> None:
        """Move a file of manifests/shared/ back into manifests/'s own kustomization (the layout
        in which `kubectl delete -k manifests/` deletes it)."""
        name = Path(relpath).name
        shutil.move(self.manifests / relpath, self.manifests / name)
        self.replace(f"manifests/{Path(relpath).parent}/kustomization.yaml", f"  - {name}\n", "")
        self.replace("manifests/kustomization.yaml", "resources:\n", f"resources:\n  - {name}\n")

    @staticmethod
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()


DELETE = object()


def run_gate(manifests_dir: Path, sql: Path = ROOT / "sql", docs: Path = ROOT / "docs", major: int | None = None,
             k8s_versions=("1.30",)) -> dict:
    """The gate's results by check id. One Kubernetes version keeps each run fast; test_gate_cli
    covers the whole range."""
    from conformance import gate, manifests
    from conformance.plan import targeting

    ctx = gate.GateContext(manifests.load(manifests_dir), sql_dir=sql, docs_dir=docs, k8s_versions=list(k8s_versions))
    with targeting(major):
        return {r.check_id: r for r in gate.run(ctx)}
