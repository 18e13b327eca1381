"""docs/runbooks/: the runbooks for the major the dev cluster runs (the plan's 14) and for the
way off it, written from the same steps `python -m conformance runbook` prints, as
upgrade/pgN/ is written from the plan data. `--check` fails when a file differs."""

from __future__ import annotations

from pathlib import Path

from conformance.plan import FIGURES, MAJOR_IMAGE_TAGS
from conformance.runbooks import books, render

FOLDER = Path("docs") / "runbooks"
HEADER = ("<!-- Written by `python -m conformance runbook --docs` from conformance/runbooks/ and the manifests: "
          "do not edit. -->\n")
# The major the way off 14 leads to in the written docs (every other is printed on demand).
UPGRADE_TO = max(MAJOR_IMAGE_TAGS)


def _books(root: Path) -> dict[str, books.Runbook]:
    plan = FIGURES["pg-major"].plan
    return {
        "apply.md": books.apply_runbook(root, plan),
        "restore.md": books.restore_runbook(root, plan),
        "node-crash.md": books.node_crash_runbook(root, plan),
        "snapshot.md": books.snapshot_runbook(root, plan),
        f"upgrade-to-{UPGRADE_TO}.md": books.upgrade_runbook(root, UPGRADE_TO, plan),
        f"rollback-from-{UPGRADE_TO}.md": books.rollback_runbook(root, UPGRADE_TO, plan),
        f"retire-claim-{plan}.md": books.retire_claim_runbook(root, plan),
        "from-v1.md": books.from_v1_runbook(root),
    }


def _index(written: dict[str, books.Runbook]) -> str:
    plan = FIGURES["pg-major"].plan
    lines = ["# Runbooks", "",
             f"Each is written for the manifests of one major, and its first step stops when the cluster runs "
             f"another image. These are for PostgreSQL {plan} (what `manifests/` runs) and for the way to "
             f"{UPGRADE_TO}; for any other major print the runbook for it, as a script or as markdown:", "",
             f"    {books.CONFORMANCE} runbook restore --pg-major {UPGRADE_TO}",
             f"    {books.CONFORMANCE} runbook upgrade --from {plan} --to 16 --format md", "",
             "| runbook | for |", "|---|---|"]
    for name, book in written.items():
        lines.append(f"| [{book.title}]({name}) | `{book.command}` |")
    lines += ["", "Every command in them is checked in `nox -s tests` against the rendered manifests of its major "
              "(`tests/test_runbooks.py`), and the psql, pg_dump and pg_restore steps run in the upgrade "
              "rehearsal and the restore drill on the embedded and Docker targets.", ""]
    return "\n".join(lines)


def files(root: Path) -> dict[Path, str]:
    written = _books(root)
    out = {root / FOLDER / name: HEADER + render.markdown(book) for name, book in written.items()}
    out[root / FOLDER / "README.md"] = HEADER + _index(written)
    return out


def differing(root: Path) -> list[Path]:
    return [path for path, text in files(root).items() if not path.is_file() or path.read_text() != text]


def write(root: Path) -> list[Path]:
    out = []
    for path, text in files(root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.append(path)
    return out
