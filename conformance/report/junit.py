"""JUnit XML: one testcase per check, grouped by plan section."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conformance.results import Status


def render(results, context: dict) -> str:
    suite = ET.Element("testsuite", name=f"conformance-{context.get('target', 'static')}",
                       tests=str(len(results)),
                       failures=str(sum(r.status is Status.FAILED for r in results)),
                       errors=str(sum(r.status is Status.ERROR for r in results)),
                       skipped=str(sum(r.status is Status.SKIPPED for r in results)))
    if context.get("notes"):
        properties = ET.SubElement(suite, "properties")
        for note in context["notes"]:
            ET.SubElement(properties, "property", name="note", value=note)
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"plan.{r.section}", name=r.check_id)
        if r.status is Status.FAILED:
            ET.SubElement(case, "failure", message=r.title).text = "\n".join(r.lines())
        elif r.status is Status.ERROR:
            ET.SubElement(case, "error", message=r.message)
        elif r.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", message=r.message)
        elif r.status is Status.WARNED:  # passes, and says why it warned
            ET.SubElement(case, "system-out").text = "\n".join(r.lines())
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
