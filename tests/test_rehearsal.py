"""docs/upgrade.md rehearsed: 14 from manifests/, rows through the write path, the CronJob's
dump, N from upgrade/pgN/ with its init Job, the restore Job, every live check, rows compared."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conformance import rehearsal
from conformance.errors import InputError
from conformance.plan import SCHEMA_TABLES
from conformance.targets import docker_engine
from tests.project import ROOT

NO_DOCKER = docker_engine.unavailable_reason()


def _assert_passed(report: rehearsal.Rehearsal) -> None:
    assert report.passed, rehearsal.render(report)
    assert report.before["pc_product_change_history"][0] == rehearsal.REQUESTS
    assert set(report.before) == set(SCHEMA_TABLES) and report.before == report.after
    assert [name for name, _ in report.steps if name in rehearsal.DOWNTIME_STEPS] == list(rehearsal.DOWNTIME_STEPS)
    assert report.downtime > 0


@pytest.mark.live
@pytest.mark.slow
def test_the_runbook_carries_every_row_from_14_to_18_natively():
    _assert_passed(rehearsal.rehearse(ROOT / "manifests", 14, 18, "native"))


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")
def test_the_runbook_carries_every_row_from_14_to_18_in_docker(client, images):
    from conformance import manifests
    from conformance.images import builder

    builder.build_all(client, manifests.load(ROOT / "upgrade" / "pg18"), lambda m: None)  # 18's stand-in
    _assert_passed(rehearsal.rehearse(ROOT / "manifests", 14, 18, "docker"))


@pytest.mark.live
def test_a_restore_that_loses_rows_fails_the_rehearsal(tmp_path):
    """The restore Job restoring only the schema: the rows differ, and the rehearsal says so."""
    import shutil

    for name in ("manifests", "upgrade", "sql", "docs"):
        shutil.copytree(ROOT / name, tmp_path / name)
    job = tmp_path / "upgrade" / "restore" / "postgresql-product-change-restore-job.yaml"
    job.write_text(job.read_text().replace("--single-transaction --exit-on-error", "--single-transaction --exit-on-error --schema-only"))
    report = rehearsal.rehearse(tmp_path / "manifests", 14, 15, "native")
    assert not report.passed and not report.rows_match
    assert "checksum DIFFERENT" in rehearsal.render(report) and "rehearsal: FAILED: rows differ" in rehearsal.render(report)


def test_a_rehearsal_backwards_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "conformance", "upgrade-rehearsal", "--from", "16", "--to", "15"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --to 15 is not after --from 16"


def test_manifests_of_a_major_without_an_overlay_are_refused(tmp_path):
    (tmp_path / "manifests").mkdir()
    with pytest.raises(InputError, match="no manifests for PostgreSQL 16"):
        rehearsal.manifests_dir(tmp_path / "manifests", 16)
