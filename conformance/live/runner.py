"""Run the live checks on a target: start it, apply the schema as the init Job does, run every
check, always tear down."""

from __future__ import annotations

from conformance import registry, targets, workload
from conformance.errors import EnvironmentProblem
from conformance.live.context import LiveContext
from conformance.results import Result, Status


def load_checks() -> None:
    from conformance.live import checks  # noqa: F401  (registers on import)


def apply_schema(target) -> None:
    proc = target.run_script(workload.schema_init(target.manifests))
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise EnvironmentProblem("the schema-init Job's script failed on the fresh server: " + " | ".join(tail))


def run_checks(ctx: LiveContext, only: set[str] | None = None) -> list[Result]:
    load_checks()
    return [check.run(ctx) for cid, check in registry.LIVE.items() if only is None or cid in only]


def run_live(manifests, target_name: str, keep: bool = False, allow_writes: bool = False, progress=None,
             only: set[str] | None = None) -> list[Result]:
    options = {"progress": progress} if target_name == "native" else {}
    if keep and target_name == "native":
        options["keep"] = True
    target = targets.create(target_name, manifests, **options)
    with target:
        if progress:
            progress("applying the schema-init Job's script")
        apply_schema(target)
        ctx = LiveContext(target, manifests, allow_writes=allow_writes or target_name != "cluster")
        if progress:
            progress("running live checks")
        results = run_checks(ctx, only)
    return results


def failed(results) -> list[Result]:
    return [r for r in results if r.status in (Status.FAILED, Status.ERROR)]
