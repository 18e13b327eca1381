"""check --base: the consequences of applying the manifests over the base, as results the
report writers already know (one per consequence class, scope "change")."""

from __future__ import annotations

from pathlib import Path

from conformance import schema_configmap
from conformance.changes import consequences
from conformance.changes.baseline import Baseline
from conformance.errors import EnvironmentProblem, InputError
from conformance.manifests import Manifests
from conformance.results import Result, Status

# class -> (result id, plan section, title, status when it has findings)
CLASSES = {
    consequences.REFUSED: ("change-refused", "10.2", "changes the API server refuses (kubectl apply -k stops half-way)",
                           Status.FAILED),
    consequences.DATA: ("change-data-at-risk", "3.2", "changes that put the database's data at risk", Status.FAILED),
    consequences.NO_EFFECT: ("change-no-effect", "4.1", "postgresql.conf changes that will not take effect",
                             Status.FAILED),
    consequences.DOWNTIME: ("change-downtime", "1.2", "changes that restart the database pod (downtime)", Status.WARNED),
    consequences.CONDITIONAL: ("change-refused-in-a-state", "10.2", "changes the API server refuses in a state the "
                               "manifests cannot show (a finished Job not yet removed, a claim not yet bound)",
                               Status.WARNED),
    consequences.IGNORED: ("change-ignored", "10.2", "changes the API server accepts and silently drops", Status.WARNED),
}
SCHEMA = ("change-schema", "6.1", "sql/ changes that do not reach an existing database")


def judge(base: Baseline, now: Manifests, sql_dir: Path, major: int, schema: bool = True, progress=lambda m: None,
          versions: list[str] | None = None) -> list[Result]:
    judged = consequences.judge(base.manifests, now, major, versions)
    results = []
    for kind, (cid, section, title, status) in CLASSES.items():
        findings = [j.finding for j in judged if j.kind == kind]
        results.append(Result(cid, section, title, status if findings else Status.PASSED, findings, scope="change"))
    results.append(_schema(base, now, sql_dir, schema, progress))
    return results


def _schema(base: Baseline, now: Manifests, sql_dir: Path, enabled: bool, progress) -> Result:
    cid, section, title = SCHEMA

    def result(status, findings=(), message=""):
        return Result(cid, section, title, status, list(findings), message, scope="change")

    if base.sql_dir is None:
        return result(Status.SKIPPED, message=f"the base {base.label} has no sql/ to compare with")
    try:
        if schema_configmap.sql_files(base.sql_dir) == schema_configmap.sql_files(sql_dir):
            return result(Status.PASSED, message="sql/ unchanged")
    except InputError as exc:
        return result(Status.ERROR, message=str(exc))
    if not enabled:
        return result(Status.SKIPPED, message="sql/ changed, and --no-schema-compare was given: not compared")
    from conformance.changes import schema_drift

    try:
        findings = schema_drift.compare(base.sql_dir, sql_dir, now, progress)
    except EnvironmentProblem as exc:  # no embedded server here (the gate alone needs none)
        return result(Status.SKIPPED, message=f"sql/ changed, but the embedded server cannot run here to compare: {exc}")
    return result(Status.FAILED if findings else Status.PASSED, findings)
