"""Run the live checks on a target: start it, apply the schema as the init Job does, run every
check, always tear down."""

from __future__ import annotations

from conformance import registry, targets, workload
from conformance.errors import EnvironmentProblem, InputError
from conformance.live.context import LiveContext
from conformance.plan import targeting
from conformance.results import Result, Status


def load_checks() -> None:
    from conformance.live import (  # noqa: F401  (register on import)
        checks, container_checks, fault_checks, kube_checks, metrics_checks, privilege_checks, schema_checks,
        tuning_checks)


def apply_schema(target) -> None:
    proc = target.run_script(workload.schema_init(target.manifests))
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise EnvironmentProblem("the schema-init Job's script failed on the fresh server: " + " | ".join(tail))


def known(only: set[str] | None) -> set[str] | None:
    """only, each id a registered live check: a misspelt id would run nothing and pass."""
    load_checks()
    unknown = sorted(set(only or ()) - set(registry.LIVE))
    if unknown:
        raise InputError(f"no live check {', '.join(unknown)} (the live checks: {', '.join(sorted(registry.LIVE))})")
    return only


def run_checks(ctx: LiveContext, only: set[str] | None = None) -> list[Result]:
    known(only)
    return [check.run(ctx) for cid, check in registry.LIVE.items() if only is None or cid in only]


def target_options(target_name: str, keep: bool, allow_writes: bool, progress, manifests_dir=None,
                   context: str | None = None, cluster: str | None = None, pg_major: int | None = None) -> dict:
    """The keyword arguments each target takes, decided in one place; InputError for an
    option the target does not take (before anything starts, also where it would skip)."""
    options: dict = {"progress": progress, "keep": keep}
    if pg_major is not None:
        if target_name == "kind":
            raise InputError("--pg-major is not offered on the kind target yet")
        options.update(pg_major=pg_major)
    if target_name == "kind":
        options.update(manifests_dir=manifests_dir, cluster=cluster)
    if target_name == "cluster":
        options.update(context=context, allow_writes=allow_writes)
    return options


def skipped_all(reason: str, only: set[str] | None = None) -> list[Result]:
    known(only)
    return [Result(c.id, c.section, c.title, Status.SKIPPED, message=reason, checklist=c.checklist, scope=c.scope)
            for cid, c in registry.LIVE.items() if only is None or cid in only]


def run_live(manifests, target_name: str, keep: bool = False, allow_writes: bool = False, progress=None,
             only: set[str] | None = None, manifests_dir=None, context: str | None = None,
             cluster: str | None = None, notes: list[str] | None = None, pg_major: int | None = None) -> list[Result]:
    """notes: filled with what the report must say about how the target ran (stand-in images)."""
    options = target_options(target_name, keep, allow_writes, progress, manifests_dir, context, cluster, pg_major)
    known(only)  # before anything starts
    reason = targets.unavailable_reason(target_name)
    if reason:  # the CLI refused this unless --allow-skip (exit 3: nothing was checked)
        return skipped_all(reason, only)
    target = targets.create(target_name, manifests, **options)
    with targeting(pg_major), target:
        if target_name in ("native", "docker"):
            # kind and the cluster ran the init Job itself, as Kubernetes runs it.
            if progress:
                progress("applying the schema-init Job's script")
            apply_schema(target)
        if progress:
            progress("running live checks")
        results = run_live_on(target, manifests, only, allow_writes=allow_writes or target_name != "cluster")
        if notes is not None:
            notes.extend(target.notes)
    return results


def run_live_on(target, manifests, only: set[str] | None = None, allow_writes: bool = True) -> list[Result]:
    """Every live check (or those in only) on a target that is already up."""
    return run_checks(LiveContext(target, manifests, allow_writes=allow_writes), only)


def failed(results) -> list[Result]:
    return [r for r in results if r.status in (Status.FAILED, Status.ERROR)]
