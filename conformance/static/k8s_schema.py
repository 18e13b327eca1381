"""Strict Kubernetes OpenAPI schema validation (kubernetes-validate's schemas), per Kubernetes
version.

kubernetes_validate.utils.validate() reads the schema and the large _definitions.json and
builds a new validator on every call: 13 objects x 6 versions made the gate spend most of
its time there. We use its schema files and its version and file-name rules, but build one
validator per (schema file) and keep it."""

from __future__ import annotations

import functools
import re

from conformance.registry import static
from conformance.results import Finding


@static("plan-5-k8s-schema", "5", "every object validates strictly against the Kubernetes schemas",
        checklist=("14.1-secret-configmap", "14.1-statefulset-ready"))
def k8s_schema(ctx):
    from conformance.static.schema_cache import SchemaCache

    cache = SchemaCache()
    try:
        for version in ctx.k8s_versions:
            for obj in ctx.manifests.objects:
                if obj.data.get("apiVersion", "").startswith("monitoring.coreos.com"):
                    continue  # a CRD: no schema in the Kubernetes OpenAPI
                key = cache.key(obj.data, version)
                outcome = cache.get(key)
                if outcome is None:
                    outcome = _validate(obj.data, version)
                    cache.put(key, outcome)
                for path, message in outcome:
                    if message is None:  # the version does not serve this kind
                        yield Finding(obj.file, obj.ref, "apiVersion", f"a kind Kubernetes {version} serves",
                                      f"{obj.data['apiVersion']}/{obj.kind}", obj.line(("apiVersion",)))
                    else:
                        path = tuple(path)
                        yield Finding(obj.file, obj.ref, ".".join(str(p) for p in path) or "-",
                                      f"valid for Kubernetes {version} (strict)", message, obj.line(path))
    finally:
        cache.save()


def _validate(data: dict, version: str) -> list:
    """[[path, message]] of the first schema error ([] when valid; message None: no such kind)."""
    import jsonschema

    try:
        _validator(data["kind"], data["apiVersion"], version).validate(data)
    except jsonschema.ValidationError as err:
        return [[list(err.path), err.message]]
    except kv().SchemaNotFoundError:
        return [[[], None]]
    return []


def kv():
    import kubernetes_validate.utils as utils  # only on a cache miss: its import is a third of the gate

    return utils


@functools.lru_cache(maxsize=None)
def _schema_dir(version: str) -> str:
    # The newest schema version not newer than the one asked for (kubernetes_validate's rule).
    utils = kv()
    wanted = utils.major_minor(f"{version}.0")
    if wanted > utils.latest_version():
        raise utils.VersionNotSupportedError(version=wanted)
    chosen = [v for v in utils.all_versions() if utils.major_minor(v) <= wanted][-1]
    return f"v{chosen}-local-strict"


@functools.lru_cache(maxsize=None)
def _definitions(schema_dir: str, version: str):
    from referencing import Resource

    return Resource.from_contents(kv().schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", version))


@functools.lru_cache(maxsize=None)
def _validator(kind: str, api_version: str, version: str):
    import jsonschema
    from referencing import Registry, Resource

    schema_dir = _schema_dir(version)
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv().schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group}.json", version)
    except FileNotFoundError:
        raise kv().SchemaNotFoundError(version=version, kind=kind, api_version=api_version) from None
    registry = _definitions(schema_dir, version) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)
