"""Traceability: each item of the plan's checklist (14.1-14.3) with the checks that cover it."""

from __future__ import annotations

from conformance.plan import CHECKLIST
from conformance.report.text import summary
from conformance.results import Status

_ICON = {Status.PASSED: "pass", Status.FAILED: "**FAIL**", Status.ERROR: "**ERROR**", Status.SKIPPED: "skip",
         Status.WARNED: "warn"}
_ORDER = [Status.SKIPPED, Status.PASSED, Status.WARNED, Status.ERROR, Status.FAILED]


def render(results, context: dict) -> str:
    lines = [f"# Conformance: {context.get('target', 'static')}", "",
             f"{summary(results)}", "", *[f"> {note}" for note in context.get("notes") or ()],
             *([""] if context.get("notes") else []),
             "| checklist item | plan | checks | result |", "|---|---|---|---|"]
    for item, (section, text) in CHECKLIST.items():
        covering = [r for r in results if item in r.checklist]
        if not covering:
            lines.append(f"| {text} | {section} | - | only a live target shows it |")
            continue
        worst = max((r.status for r in covering), key=_ORDER.index)
        checks = ", ".join(f"`{r.check_id}` {_ICON[r.status]}" for r in covering)
        lines.append(f"| {text} | {section} | {checks} | {_ICON[worst]} |")
    changes = [r for r in results if r.scope == "change"]
    if changes:
        lines += ["", f"## What applying this change does (against {context.get('base', 'the base')})", "",
                  "| consequence | plan | result |", "|---|---|---|"]
        lines += [f"| {r.title} | {r.section} | {_ICON[r.status]}{': ' + r.message if r.message else ''} |"
                  for r in changes]
    failed = [line for r in results for line in r.lines()]
    if failed:
        lines += ["", "## Findings", ""] + [f"- {line}" for line in failed]
    return "\n".join(lines) + "\n"
