"""What localenv remembers about one data directory between commands: how far its first
start got, and which schema it was created from. Written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class State:
    initdb_started: bool = False  # localenv ran initdb here (so may clean up after it)
    initdb_done: bool = False   # initdb finished and the server started once
    schema_done: bool = False   # the schema-init Job's script succeeded
    schema_sha: str = ""        # hash of the schema ConfigMap it ran
    schema_files: list = field(default_factory=list)  # that ConfigMap's keys (sql/ files, migrations)
    created: str = ""
    pg_major: int = 0           # the major its data is of (0: the plan's, from before this was kept)
    upgraded_from: str = ""     # the previous major's data directory, kept until upgrade --delete-old

    @classmethod
    def load(cls, path: Path) -> "State":
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)
