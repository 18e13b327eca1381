"""Every check with id, section, status, message and findings."""

from __future__ import annotations

import json
from dataclasses import asdict


def render(results, context: dict) -> str:
    return json.dumps({
        "target": context.get("target", "static"),
        "manifests": context.get("manifests"),
        "base": context.get("base"),
        "notes": list(context.get("notes") or ()),
        "checks": [{
            "id": r.check_id, "section": r.section, "title": r.title, "scope": r.scope,
            "status": r.status.value, "message": r.message or "; ".join(r.lines()),
            "checklist": list(r.checklist), "findings": [asdict(f) for f in r.findings],
        } for r in results],
    }, indent=2, ensure_ascii=False) + "\n"
