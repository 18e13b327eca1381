"""The developer's own database follows sql/ as the cluster's does: the init Job's script, which
is idempotent and carries the migrations, run again, after a backup. What it changed is said:
the catalog before and after (accounts, schemas, tables, columns, constraints, indexes, views,
functions, triggers, grants) compared object by object. The developer's rows stay."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.changes.schema_drift import snapshot


@dataclass(frozen=True)
class Migration:
    backup: Path
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    new_files: tuple[str, ...]   # schema ConfigMap keys (sql/ files, migrations) not applied before

    def summary(self) -> str:
        parts = []
        if self.new_files:
            parts.append(f"new SQL: {', '.join(self.new_files)}")
        for what, items in (("added", self.added), ("changed", self.changed), ("removed", self.removed)):
            if items:
                shown = ", ".join(items[:6]) + (f" and {len(items) - 6} more" if len(items) > 6 else "")
                parts.append(f"{what} {shown}")
        return "; ".join(parts) or "nothing in the catalog changed (the SQL's changes were already there)"


def catalog(conninfo: dict) -> dict[str, str]:
    """The catalog without the table rows (the developer's own)."""
    return {k: v for k, v in snapshot(conninfo).items() if not k.startswith("rows of ")}


def schema_files(manifests) -> tuple[str, ...]:
    from conformance.plan import figure

    cm = manifests.find("ConfigMap", figure("schema-configmap").expected)
    return tuple(sorted((cm.get(("data",)) or {}) if cm else {}))


def migrate(backend, target, state, progress) -> Migration:
    """Back up, run the init Job's script again, compare. The backup stays whatever happens;
    a failing script changes nothing (it runs in one transaction)."""
    backup = backend.backup(backend.settings.backups / "before-migrate")
    progress(f"saved the current data first: {backup}")
    info = target.conninfo("superuser")
    before = catalog(info)
    progress("applying the changed schema: the schema-init Job's script again (idempotent, with the migrations)")
    backend._apply_durably(target)
    after = catalog(info)
    files = schema_files(backend.manifests)
    return Migration(backup=backup,
                     added=tuple(sorted(k for k in after if k not in before)),
                     changed=tuple(sorted(k for k in after if k in before and after[k] != before[k])),
                     removed=tuple(sorted(k for k in before if k not in after)),
                     # Unknown for a database from before localenv kept the list: none claimed.
                     new_files=tuple(f for f in files if state.schema_files and f not in set(state.schema_files)))
