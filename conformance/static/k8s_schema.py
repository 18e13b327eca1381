"""Strict Kubernetes OpenAPI schema validation (kubernetes-validate), per Kubernetes version."""

from __future__ import annotations

import kubernetes_validate.utils as kv

from conformance.registry import static
from conformance.results import Finding


@static("plan-5-k8s-schema", "5", "every object validates strictly against the Kubernetes schemas",
        checklist=("14.1-secret-configmap", "14.1-statefulset-ready"))
def k8s_schema(ctx):
    for version in ctx.k8s_versions:
        for obj in ctx.manifests.objects:
            if obj.data.get("apiVersion", "").startswith("monitoring.coreos.com"):
                continue  # a CRD: no schema in the Kubernetes OpenAPI
            try:
                kv.validate(obj.data, f"{version}.0", strict=True)
            except kv.ValidationError as exc:
                err = exc  # carries the jsonschema error's path and message
                path = tuple(err.path)
                yield Finding(obj.file, obj.ref, ".".join(str(p) for p in path) or "-",
                              f"valid for Kubernetes {version} (strict)", err.message, obj.line(path))
            except kv.SchemaNotFoundError:
                yield Finding(obj.file, obj.ref, "apiVersion", f"a kind Kubernetes {version} serves",
                              f"{obj.data['apiVersion']}/{obj.kind}", obj.line(("apiVersion",)))
