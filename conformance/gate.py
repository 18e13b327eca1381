"""The static gate: the manifests against the plan, without a cluster, Docker or database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

from conformance import pgconf, workload
from conformance.errors import InputError
from conformance.manifests import K8sObject, Manifests, dotted
from conformance.plan import figure
from conformance.results import Finding, MissingObject, Result

DEFAULT_K8S_VERSIONS = "1.30-1.35"


def parse_versions(spec: str) -> list[str]:
    """'1.30-1.35' or '1.30,1.33' -> ['1.30', ...]."""
    try:
        if "-" in spec:
            low, high = spec.split("-", 1)
            major, lo = (int(x) for x in low.split("."))
            major2, hi = (int(x) for x in high.split("."))
            if major != major2 or lo > hi:
                raise ValueError
            versions = [f"{major}.{m}" for m in range(lo, hi + 1)]
        else:
            versions = [f"{int(v.split('.')[0])}.{int(v.split('.')[1])}" for v in spec.split(",")]
    except (ValueError, IndexError):
        raise InputError(f"--k8s-versions {spec!r}: expected a range like 1.30-1.35 or a list like 1.30,1.33") from None
    from conformance.static.schema_cache import SchemaCache

    cache = SchemaCache()
    newest = cache.value("latest")
    if newest is None:  # once per installed kubernetes-validate: its import is slow
        import kubernetes_validate.utils as kv

        newest = kv.major_minor(kv.latest_version())
        cache.remember("latest", newest)
        cache.save()
    too_new = [v for v in versions if tuple(map(int, v.split("."))) > tuple(map(int, newest.split(".")))]
    if too_new:
        raise InputError(f"--k8s-versions {spec!r}: the installed kubernetes-validate has schemas up to {newest}; "
                         f"{', '.join(too_new)} is newer (pip install -U kubernetes-validate)")
    return versions


@dataclass
class GateContext:
    manifests: Manifests
    sql_dir: Path
    docs_dir: Path
    k8s_versions: list[str] = field(default_factory=lambda: parse_versions(DEFAULT_K8S_VERSIONS))

    def finding(self, obj: K8sObject | None, path: tuple, expected, found, file: str | None = None) -> Finding:
        return Finding(
            file=obj.file if obj is not None else (file or str(self.manifests.root)),
            obj=obj.ref if obj is not None else "-",
            path=dotted(path) if path else "-",
            expected=_show(expected), found=_show(found),
            line=obj.line(path) if obj is not None else None,
        )

    def missing(self, kind: str, figure_key: str) -> Finding:
        name = figure(figure_key).expected
        return Finding(file=str(self.manifests.root), obj=f"{kind}/{name}", path="-",
                       expected=f"a {kind} named {name}", found="none")

    def need(self, kind: str, figure_key: str) -> K8sObject:
        obj = self.manifests.find(kind, figure(figure_key).expected)
        if obj is None:
            raise MissingObject(self.missing(kind, figure_key))
        return obj

    @cached_property
    def config_map(self) -> K8sObject | None:
        return workload.postgresql_conf(self.manifests)[0]

    @cached_property
    def conf_text(self) -> str | None:
        return workload.postgresql_conf(self.manifests)[1]

    @cached_property
    def conf(self) -> dict[str, pgconf.Setting]:
        return pgconf.parse(self.conf_text or "")


def _show(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str) and (value == "" or value != value.strip()):
        return repr(value)  # make empty or space-padded text visible
    return str(value)


def end_of_life_warnings(manifests, today: date | None = None) -> list[str]:
    """A warning, not a failure: the database image's major no longer gets security fixes."""
    from conformance.plan import PG_END_OF_LIFE

    today = today or date.today()
    container = workload.database(manifests)
    major = workload.image_major(manifests)
    ended = PG_END_OF_LIFE.get(major)
    if ended is None or date.fromisoformat(ended) > today:
        return []
    return [f"warning: {container.owner.file}: {container.owner.ref} runs PostgreSQL {major} ({container.image}), "
            f"end of life since {ended}: no more security fixes; `conformance run --pg-major N` proves the "
            "manifests on a supported major"]


def run(ctx: GateContext) -> list[Result]:
    from conformance import registry
    from conformance.static import load_all

    load_all()
    return [check.run(ctx) for check in registry.STATIC.values()]
