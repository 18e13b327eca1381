"""Files that must agree with each other: the schema ConfigMap and sql/, the record of
deviations and the plan data."""

from __future__ import annotations

import re

from conformance import schema_configmap
from conformance.errors import InputError
from conformance.plan import FIGURES, figure
from conformance.registry import static
from conformance.static import wraps_missing

DEVIATIONS_FILE = "deviations.md"


@static("plan-6.2-schema-configmap-matches-sql", "6.2", "the schema ConfigMap holds exactly sql/",
        checklist=("14.1-schema-job", "14.2-tables"))
@wraps_missing
def schema_matches_sql(ctx):
    cm = ctx.need("ConfigMap", "schema-configmap")
    data = cm.get(("data",)) or {}
    try:
        files = schema_configmap.sql_files(ctx.sql_dir)
    except InputError as exc:
        yield ctx.finding(cm, ("data",), f"the files of {ctx.sql_dir}", str(exc))
        return
    for name in sorted(set(files) | set(data)):
        if name not in data:
            yield ctx.finding(cm, ("data",), f"key {name} (from sql/)", "missing: run nox -s schema")
        elif name not in files:
            yield ctx.finding(cm, ("data", name), "only files of sql/", f"{name}, which sql/ does not have")
        elif data[name] != files[name]:
            yield ctx.finding(cm, ("data", name), f"the text of sql/{name}", "different text: run nox -s schema")


@static("plan-2.2-schema", "2.2", "the schema SQL creates schema product_change", checklist=("14.2-tables",))
@wraps_missing
def schema_name(ctx):
    cm = ctx.need("ConfigMap", "schema-configmap")
    text = "\n".join(str(v) for v in (cm.get(("data",)) or {}).values())
    schema = figure("schema").expected
    if not re.search(rf"CREATE SCHEMA (IF NOT EXISTS )?{schema}\b", text, flags=re.I):
        yield ctx.finding(cm, ("data",), f"CREATE SCHEMA {schema}", "no such statement")


@static("plan-14.3-deviations-recorded", "14.3", "every deviation in the plan data is recorded in docs/deviations.md",
        checklist=("14.3-docs",))
def deviations_recorded(ctx):
    path = ctx.docs_dir / DEVIATIONS_FILE
    if not path.exists():
        yield ctx.finding(None, (), f"{path} recording each deviation", "missing", file=str(path))
        return
    text = path.read_text(encoding="utf-8")
    for key, fig in FIGURES.items():
        if fig.deviates and f"`{key}`" not in text:
            yield ctx.finding(None, (), f"an entry for `{key}` (plan {fig.section}: {fig.title})", "none", file=str(path))


SKIP_ANNOTATION = "checkov.io/skip"


@static("plan-14.3-policy-skips-explained", "14.3",
        "every checkov check skipped in a manifest says why, and docs/deviations.md says the same",
        checklist=("14.3-docs",))
def policy_skips_explained(ctx):
    """checkov reads `checkov.io/skipN: CKV_ID=reason` (split on "=": a second one breaks its
    parser); a reason that is not in deviations.md is an exception nobody reviewed."""
    path = ctx.docs_dir / DEVIATIONS_FILE
    text = " ".join(path.read_text(encoding="utf-8").split()) if path.exists() else ""
    for obj in ctx.manifests.objects:
        for key, value in (obj.get(("metadata", "annotations")) or {}).items():
            if not key.startswith(SKIP_ANNOTATION):
                continue
            where = ("metadata", "annotations", key)
            check_id, sep, reason = str(value).partition("=")
            if not sep or not re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", check_id.strip()) or not reason.strip() or "=" in reason:
                yield ctx.finding(obj, where, "CKV_<ID>=<one-line reason> (one '=')", value)
            elif " ".join(reason.split()) not in text:
                yield ctx.finding(obj, where, f"its reason in docs/{DEVIATIONS_FILE}, word for word",
                                  f"{check_id.strip()}: \"{reason.strip()}\" is not there")
