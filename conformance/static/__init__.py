"""Static checks: each module registers its checks with conformance.registry on import."""

from __future__ import annotations

import functools

from conformance.results import MissingObject


def wraps_missing(func):
    """Let a check say `ctx.need(kind, key)` and report a missing object as its finding."""

    @functools.wraps(func)
    def wrapper(ctx):
        try:
            return list(func(ctx) or [])
        except MissingObject as exc:
            return [exc.finding]
    return wrapper


def load_all() -> None:
    from conformance.static import (  # noqa: F401
        deploy_safety, documents, figures, k8s_schema, monitoring, pod_security, postgresql_conf, recovery, references,
        rollout, scripts, secret_files, security,
    )
