"""GitHub Actions annotations: one ::error (or ::warning) line per finding, pointing at the YAML line."""

from __future__ import annotations

from pathlib import Path


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def render(results, context: dict) -> str:
    root = Path(context.get("manifests") or ".")
    out = []
    for r in results:
        for f in r.findings:
            # Files of the manifests are named relative to their folder; others (docs/...,
            # sql/...) relative to the repository already.
            path = str(root / f.file) if (root / f.file).exists() else f.file
            loc = f"file={path}" + (f",line={f.line}" if f.line else "")
            level = "warning" if r.status.value == "warned" else "error"
            out.append(f"::{level} {loc},title={r.check_id} (plan {r.section})::"
                       + _escape(f"{f.obj} {f.path}: {f.describe()}"))
        if r.status.value == "error":
            out.append(f"::error title={r.check_id}::{_escape(r.message)}")
    for note in context.get("notes") or ():
        kind = "warning" if note.startswith("warning:") else "notice"
        out.append(f"::{kind}::{_escape(note.removeprefix('warning: '))}")
    return "\n".join(out) + ("\n" if out else "")
