"""Generate the schema ConfigMap (plan 6.2) from sql/: it is never edited by hand.

`python -m conformance schema-configmap` rewrites manifests/postgresql-product-change-schema.yaml;
`--check` exits 1 when the file differs from what sql/ gives. The gate's check
plan-6.2-schema-configmap-matches-sql compares the loaded ConfigMap with sql/ the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from conformance.errors import InputError
from conformance.plan import figure

FILE_NAME = "postgresql-product-change-schema.yaml"

_HEADER = """\
# GENERATED from sql/ by `python -m conformance schema-configmap`. Do not edit: change sql/ and
# regenerate; the gate fails when this file and sql/ differ. Plan 6.2 (the plan left a
# placeholder here). The init Job applies the files in name order, in one transaction.
"""


MIGRATIONS = "migrations"
MIGRATION_NAME = re.compile(r"^(\d{4})-([a-z0-9][a-z0-9-]*)\.sql$")


def migration_key(name: str) -> str:
    """sql/migrations/0001-add-x.sql -> ConfigMap key 03m0001-add-x.sql: after 03-data.sql and
    before 04-privileges.sql in the Job's glob order, in the C locale and in en_US alike."""
    return f"03m{name}"


def sql_files(sql_dir: Path) -> dict[str, str]:
    """ConfigMap key -> text: sql/*.sql (the schema a fresh database gets), then
    sql/migrations/NNNN-name.sql (what brings an existing one there; no-ops on a fresh one)."""
    if not sql_dir.is_dir():
        raise InputError(f"{sql_dir}: no such directory (the schema SQL)")
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(sql_dir.glob("*.sql"))}
    if not files:
        raise InputError(f"{sql_dir}: no *.sql files")
    for path in sorted((sql_dir / MIGRATIONS).glob("*.sql")):
        if not MIGRATION_NAME.match(path.name):
            raise InputError(f"{path}: a migration is named NNNN-what-it-does.sql (four digits, lower case, hyphens)")
        files[migration_key(path.name)] = path.read_text(encoding="utf-8")
    return dict(sorted(files.items()))


def render(files: dict[str, str]) -> str:
    out = [_HEADER,
           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n",
           f"  name: {figure('schema-configmap').expected}\n",
           f"  namespace: {figure('namespace').expected}\n",
           "  labels:\n    app: postgresql-product-change\n    config-type: schema\n",
           "    app.kubernetes.io/name: postgresql\n",
           "    app.kubernetes.io/instance: postgresql-product-change\n",
           "    app.kubernetes.io/part-of: phonebill\n",
           "data:\n"]
    for name, text in files.items():
        if "\t" in text or text[:1] in (" ", "\n") or any(line.rstrip(" ") != line for line in text.splitlines()):
            raise InputError(f"sql/{name}: tabs, trailing spaces or a leading blank line cannot be kept "
                             "exactly in a YAML block; remove them")
        body = "".join(f"    {line}\n" if line else "\n" for line in text.splitlines())
        chomp = "" if text.endswith("\n") and not text.endswith("\n\n") else "+"
        out.append(f"  {name}: |{chomp}\n{body}")
    rendered = "".join(out)
    back = yaml.safe_load(rendered)["data"]
    if back != files:
        raise InputError("the generated schema ConfigMap does not read back as sql/ (a YAML quoting case)")
    return rendered


def write(sql_dir: Path, manifests_dir: Path) -> Path:
    target = manifests_dir / FILE_NAME
    target.write_text(render(sql_files(sql_dir)), encoding="utf-8")
    return target


def differs(sql_dir: Path, manifests_dir: Path) -> bool:
    target = manifests_dir / FILE_NAME
    return not target.exists() or target.read_text(encoding="utf-8") != render(sql_files(sql_dir))
