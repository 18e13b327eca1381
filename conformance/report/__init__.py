"""Output formats, each a small writer: results -> text."""

from __future__ import annotations

FORMATS = ("text", "json", "junit", "markdown", "github")


def render(fmt: str, results, context: dict) -> str:
    if fmt == "text":
        from conformance.report.text import render as r
    elif fmt == "json":
        from conformance.report.json_report import render as r
    elif fmt == "junit":
        from conformance.report.junit import render as r
    elif fmt == "markdown":
        from conformance.report.markdown import render as r
    elif fmt == "github":
        from conformance.report.github import render as r
    else:
        raise ValueError(fmt)
    return r(results, context)
