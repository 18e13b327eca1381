"""Results of strict schema validation kept between gate runs, keyed by what decides them: the
object's content, the Kubernetes version and the installed kubernetes-validate (its schemas).
The gate runs on every save (pre-commit) over objects that mostly did not change; an object
that changed, a new version or a new kubernetes-validate is validated again. A cached failure
is reported exactly as when it was found, so no check is weakened.

One JSON file in the cache; written atomically (temp file, rename), so parallel gates at worst
each keep their own last run."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path

Outcome = list  # [[path..., message], ...]; [] = valid; None in a slot = kind not served


def _file() -> Path:
    from conformance.pg.binaries import cache_root

    try:
        version = metadata.version("kubernetes-validate")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return cache_root() / "gate" / f"k8s-schema-{version}.json"


class SchemaCache:
    def __init__(self):
        self.path = _file()
        try:
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}
        self.results: dict = self.data.get("results", {})
        self.used: dict = {}
        self.changed = False

    @staticmethod
    def key(obj: dict, version: str) -> str:
        return hashlib.sha256(json.dumps([version, obj], sort_keys=True, default=str).encode()).hexdigest()

    def get(self, key: str):
        if key in self.results:
            self.used[key] = self.results[key]
            return self.results[key]
        return None

    def put(self, key: str, outcome) -> None:
        self.used[key] = outcome
        self.changed = True

    def value(self, name: str):
        return self.data.get(name)

    def remember(self, name: str, value) -> None:
        if self.data.get(name) != value:
            self.data[name] = value
            self.changed = True

    def save(self) -> None:
        """Keep what this run used (so the file stays the size of the manifests)."""
        if not self.changed and set(self.used) == set(self.results):
            return
        if self.used:  # a run that validated nothing (parse_versions alone) keeps the results
            self.data["results"] = self.used
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".k8s-schema-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.data, handle)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only cache only costs speed
