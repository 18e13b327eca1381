"""One line per finding, then a summary line."""

from __future__ import annotations

from collections import Counter

from conformance.results import Status


def summary(results) -> str:
    counts = Counter(r.status for r in results)
    return (f"{counts[Status.PASSED]} passed, {counts[Status.FAILED]} failed, "
            f"{counts[Status.ERROR]} errors, {counts[Status.SKIPPED]} skipped"
            + (f", {counts[Status.WARNED]} warned" if counts[Status.WARNED] else ""))


def render(results, context: dict) -> str:
    lines = [line for r in results for line in r.lines()]
    if context.get("verbose"):
        lines += [f"skipped {r.check_id} (plan {r.section}): {r.message}" for r in results if r.status is Status.SKIPPED]
    lines += [note if note.startswith("warning:") else f"note: {note}" for note in context.get("notes") or ()]
    lines.append(f"{context.get('what', 'conformance')}: {summary(results)}")
    return "\n".join(lines) + "\n"
