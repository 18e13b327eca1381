"""The upgrade runbook rehearsed: 14 from manifests/, rows through the write path, then every
step of `runbook upgrade` with its own text where it runs in a pod (counts, the CronJob's dump
and the sed that names it, N's init Job, the restore Job with the pinned dump, the counts
compared, every live check), rows compared by checksum too."""

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
    actions = [r.action for r in report.run.records]
    assert actions[:3] == ["preflight", "stop-writers", "cluster"] and actions[-1] == "cluster"
    assert {"count-rows", "dump", "apply", "restore", "compare-rows", "verify"} <= set(actions)
    assert report.downtime > 0 and report.cluster_range[1] > report.cluster_range[0] > 0


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


def _nightly_backup(executor) -> None:
    """The CronJob's 02:00 run between the new server's start and the restore: a newer dump,
    of the new, empty database."""
    from conformance import workload

    executor.run_job(workload.backup(executor.current.manifests))


@pytest.mark.live
def test_a_nightly_dump_between_the_steps_is_not_what_gets_restored():
    """The old runbook restored the newest dump; the new one restores the dump it pinned."""
    report = rehearsal.rehearse(ROOT / "manifests", 14, 15, "native", hooks={"apply": _nightly_backup})
    assert report.passed, rehearsal.render(report)


@pytest.mark.live
def test_the_wrong_dump_is_caught_by_the_row_counts():
    def newest_instead(executor):
        _nightly_backup(executor)
        newest = max(executor.backup_dir.glob("*.dump"), key=lambda p: (p.stat().st_mtime, p.name))
        executor.state["dump"] = newest.name  # what "the newest dump" gave the old runbook

    report = rehearsal.rehearse(ROOT / "manifests", 14, 15, "native", hooks={"apply": newest_instead})
    assert not report.passed and report.run.failed.startswith("step 10 (Compare the rows): the rows differ")
    assert "product_change.pc_product_change_history|50" in report.run.failed
    assert "rehearsal: FAILED" in rehearsal.render(report)


@pytest.mark.live
def test_a_restore_that_loses_rows_is_rolled_back_and_fails_the_rehearsal(tmp_path):
    """The restore Job restoring only the schema: its own check refuses to commit."""
    import shutil

    for name in ("manifests", "upgrade", "sql", "docs"):
        shutil.copytree(ROOT / name, tmp_path / name)
    job = tmp_path / "upgrade" / "restore" / "postgresql-product-change-restore-job.yaml"
    job.write_text(job.read_text().replace('pg_restore --clean --if-exists --file=- -- "$dump"',
                                           'pg_restore --clean --if-exists --schema-only --file=- -- "$dump"'))
    report = rehearsal.rehearse(tmp_path / "manifests", 14, 15, "native")
    assert not report.passed and "restore check:" in report.run.failed
    assert "rehearsal: FAILED" in rehearsal.render(report)


def test_a_rehearsal_backwards_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "conformance", "upgrade-rehearsal", "--from", "16", "--to", "15"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --to 15 is not after --from 16"


def test_manifests_of_a_major_without_an_overlay_are_refused(tmp_path):
    (tmp_path / "manifests").mkdir()
    with pytest.raises(InputError, match="no manifests for PostgreSQL 16"):
        rehearsal.manifests_dir(tmp_path / "manifests", 16)
