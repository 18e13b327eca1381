"""When a postgresql.conf setting takes effect: its pg_settings context (postmaster: at start;
sighup: on reload; user, superuser, backend...: in new sessions; internal: never). Read from the
embedded server's own pg_settings for each major and saved as data
(conformance/changes/setting-contexts.json); `nox -s setting-contexts` regenerates it."""

from __future__ import annotations

import functools
import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "setting-contexts.json"


@functools.cache
def _all() -> dict[str, dict[str, str]]:
    return json.loads(DATA.read_text(encoding="utf-8"))["majors"]


def contexts(major: int) -> tuple[dict[str, str], int]:
    """(name -> context, the major they were read from): the nearest major we have data for
    when this one has none saved, which the findings then name."""
    data = _all()
    if str(major) in data:
        return data[str(major)], major
    nearest = min(data, key=lambda m: abs(int(m) - major))
    return data[nearest], int(nearest)


def is_custom(name: str) -> bool:
    """A `prefix.name` setting: PostgreSQL accepts it in postgresql.conf as a placeholder (or
    an extension's own, such as auto_explain.*), never refuses to start over it."""
    return "." in name


def generate(majors: list[int], progress=print) -> dict:
    """Start each major's embedded server on a scratch directory and read pg_settings."""
    import psycopg

    from conformance import manifests
    from conformance.targets.native import NativeTarget

    loaded = manifests.load(Path(__file__).resolve().parent.parent.parent / "manifests")
    out: dict[str, dict[str, str]] = {}
    for major in majors:
        progress(f"reading pg_settings of PostgreSQL {major}")
        with NativeTarget(loaded, pg_major=major, progress=progress) as target:
            with psycopg.connect(**target.conninfo("superuser")) as conn:
                rows = conn.execute("SELECT name, context FROM pg_settings ORDER BY name").fetchall()
                version = conn.execute("SHOW server_version").fetchone()[0]
        out[str(major)] = dict(rows)
        out[str(major)]["#version"] = version
    return {"generated-by": "python -m conformance setting-contexts", "majors": out}


def write(majors: list[int], progress=print) -> Path:
    DATA.write_text(json.dumps(generate(majors, progress), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return DATA
