"""The way off PostgreSQL 14 (end of life 2026-11-12): the same manifests, SQL and settings
proven on every later major the embedded target offers, and the gate's warning."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta

import pytest

from conformance import gate, manifests
from conformance.live.runner import run_live
from conformance.pg.binaries import MAJOR_RELEASES
from conformance.plan import PG_END_OF_LIFE, figure
from conformance.results import Status
from tests.project import ROOT

PLAN_MAJOR = figure("pg-major").expected
LATER = sorted(m for m in MAJOR_RELEASES if m > PLAN_MAJOR)


# What the native target cannot show, each with the reason it says: every other live check passes.
NATIVE_SKIPS = {
    **{cid: "needs a container target (docker); this is native"
       for cid in ("live-9.1-container-hardening", "live-3.1-container-limits", "live-5.1-data-on-volume")},
    **{cid: "needs a Kubernetes target (kind or cluster); this is native"
       for cid in ("live-2.1-cluster", "live-8.2-pod-ready", "live-3.1-limits-applied", "live-3.3-service", "live-9.1-network-policy",
                   "live-3.2-claims-bound", "live-7.2-cronjob-run", "live-5.1-survives-pod-delete")},
}


def outcome(results) -> dict[str, str]:
    """check -> "passed", or "skipped: <reason>"; the dev tuning's inconclusive throughput (the
    machine's noise, a warning) counts as passed, any other warning does not."""
    from conformance.results import Inconclusive

    out = {}
    for r in results:
        if r.status is Status.WARNED and all(isinstance(f, Inconclusive) and f.path == "throughput (plan 12.1)"
                                             for f in r.findings):
            out[r.check_id] = "passed"
        elif r.status is Status.SKIPPED:
            out[r.check_id] = f"skipped: {r.message}"
        else:
            out[r.check_id] = r.status.value if r.status is not Status.PASSED else "passed"
    return out


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("major", LATER)
def test_every_live_check_passes_on_a_later_major(major):
    from conformance import registry
    from conformance.live.runner import load_checks

    load_checks()
    notes: list[str] = []
    # upgrade/pgN: the manifests with what that major changes (image, claim, 18's layout).
    results = run_live(manifests.load(ROOT / "upgrade" / f"pg{major}"), "native", notes=notes, pg_major=major)
    expected = {cid: f"skipped: {NATIVE_SKIPS[cid]}" if cid in NATIVE_SKIPS else "passed" for cid in registry.LIVE}
    got = outcome(results)
    assert got == expected, "\n".join(f"{cid}: {got.get(cid)} (expected {want})" for cid, want in expected.items()
                                      if got.get(cid) != want) + "\n" + "\n".join(l for r in results for l in r.lines())
    assert notes == [f"PostgreSQL {major}.{MAJOR_RELEASES[major].split('.')[1]} (--pg-major {major}); "
                     f"the plan says {PLAN_MAJOR}"]


def test_the_gate_warns_once_the_manifests_major_is_past_its_end_of_life():
    loaded = manifests.load(ROOT / "manifests")
    ended = date.fromisoformat(PG_END_OF_LIFE[PLAN_MAJOR])
    # The day before, by date arithmetic (day - 1 broke on the first of a month).
    assert gate.end_of_life_warnings(loaded, today=ended - timedelta(days=1)) == []
    (warning,) = gate.end_of_life_warnings(loaded, today=ended)
    assert warning.startswith("warning: postgresql-product-change-statefulset.yaml: StatefulSet/postgresql-product-change")
    assert f"PostgreSQL {PLAN_MAJOR}" in warning and f"end of life since {ended.isoformat()}" in warning


def test_the_warning_does_not_fail_the_gate(project):
    proc = subprocess.run([sys.executable, "-m", "conformance", "check", "--manifests", str(project.manifests),
                           "--k8s-versions", "1.30"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "end of life since" in proc.stdout


@pytest.mark.parametrize("args,message", [
    (["--pg-major", "19"], "'19': one of 14, 15, 16, 17, 18"),
    (["--pg-major", "16", "--target", "kind"], "--pg-major is not offered on the kind target yet"),
])
def test_a_major_that_cannot_run_is_refused_in_one_line(args, message):
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]


@pytest.mark.live
def test_localenv_runs_a_later_major_in_a_home_of_its_own(localenv):
    up = localenv.run("--pg-major", "18", "up")
    assert "PostgreSQL 18." in up.stderr
    assert localenv.sql("SHOW server_version_num").startswith("18")
    assert localenv.sql("SELECT count(*) FROM product_change.pc_circuit_breaker_state") == "3"
    localenv.run("down")
    assert "PostgreSQL 18." in localenv.run("up").stderr, "without the flag, the data's major"
    localenv.run("down")
    other = localenv.run("--pg-major", "16", "up", ok=False)
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert "holds PostgreSQL 18 data" in other.stderr and "--pg-major 18" in other.stderr


ROWS = "SELECT (SELECT count(*) FROM product_change.pc_kos_integration_log), current_setting('server_version_num')"


@pytest.mark.live
def test_localenv_upgrade_carries_rows_and_privileges_and_keeps_the_old_data(localenv):
    localenv.run("up")
    for n in range(3):
        localenv.sql(f"INSERT INTO product_change.pc_kos_integration_log (request_id, integration_type, method, "
                     f"endpoint_url) VALUES ('before-{n}', 'CUSTOMER_INFO', 'GET', '/c')")
    done = localenv.run("upgrade", "--to", "18")
    assert "upgraded PostgreSQL 14 -> 18: rows match" in done.stdout and "pc_kos_integration_log 3" in done.stdout
    assert (localenv.home / "backups" / "before-upgrade").is_dir()
    count, version = localenv.sql(ROWS).split("|")
    assert count == "3" and version.startswith("18")
    assert localenv.sql("SELECT count(*) FROM product_change.pc_circuit_breaker_state", role="readonly") == "3"
    denied = localenv.run("psql", "--as", "app", "-c", "DELETE FROM product_change.pc_kos_integration_log", ok=False)
    assert denied.returncode != 0 and "permission denied for table pc_kos_integration_log" in denied.stderr
    old = localenv.home / "native" / "volume" / "pgdata.pg14"
    assert (old / "PG_VERSION").read_text().strip() == "14", "the old data is kept until --delete-old"
    localenv.run("down")
    assert "PostgreSQL 18." in localenv.run("up").stderr, "later commands follow the data's major without a flag"
    assert f"deleted {old}" in localenv.run("upgrade", "--delete-old").stdout and not old.exists()


@pytest.mark.live
def test_an_upgrade_that_fails_half_way_leaves_the_old_server_running_with_its_data(localenv):
    localenv.run("up")
    localenv.sql("INSERT INTO product_change.pc_kos_integration_log (request_id, integration_type, method, "
                 "endpoint_url) VALUES ('kept', 'CUSTOMER_INFO', 'GET', '/c')")
    # A reg* column in a user table: pg_upgrade refuses it (OIDs are not kept), after the
    # backup, the stop, the move of the old data and the new initdb.
    localenv.run("psql", "--as", "admin", "-qc", "CREATE TABLE product_change.blocks_upgrade (r regproc)")
    failed = localenv.run("upgrade", "--to", "18", ok=False)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    error = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "upgrade to PostgreSQL 18 failed, and was undone: PostgreSQL 14 runs again" in error[0]
    assert "reg*" in error[0] or "regproc" in error[0] or "data types" in error[0], error[0]
    assert localenv.run("status").returncode == 0
    count, version = localenv.sql(ROWS).split("|")
    assert count == "1" and version.startswith("14")
    assert not (localenv.home / "native" / "volume" / "pgdata.pg14").exists()


def test_an_upgrade_is_verified_only_by_every_expected_check_passing():
    """Only FAILED and ERROR used to count: a verification that ran nothing passed."""
    from localenv.upgrade import VERIFYING_CHECKS, unverified
    from conformance.results import Result

    def result(cid, status):
        return Result(cid, "x", "t", status)

    everything = [result(cid, Status.PASSED) for cid in sorted(VERIFYING_CHECKS)]
    assert unverified(everything) == []
    assert unverified([]) == [f"{cid} did not run" for cid in sorted(VERIFYING_CHECKS)]
    skipped = [result(r.check_id, Status.SKIPPED if r.check_id == "live-14.2-indexes" else Status.PASSED)
               for r in everything]
    assert unverified(skipped) == ["live-14.2-indexes skipped: "]


def test_an_unreadable_checksum_setting_and_a_failed_analyze_are_one_line_errors(tmp_path):
    """pg_controldata's failure was read as "no checksums"; vacuumdb's ended in a traceback."""
    from conformance.errors import EnvironmentProblem
    from conformance.pg.binaries import locate
    from conformance.pg.server import RunAs, Server
    from localenv.upgrade import _analyze, _same_checksums

    binaries = locate(lambda m: None)
    not_data = Server(binaries, tmp_path / "empty", tmp_path / "run", RunAs.for_this_process())
    (tmp_path / "empty").mkdir()
    with pytest.raises(EnvironmentProblem, match="pg_controldata could not read .*empty's data checksum setting"):
        _same_checksums(not_data, 18)

    class Unreachable:  # a real vacuumdb against a port nothing listens on
        def __init__(self):
            self.binaries = binaries

        def conninfo(self, role):
            from conformance.pg import ports

            return {"host": "127.0.0.1", "port": ports.free_port(), "user": "u", "password": "p", "dbname": "d"}

    with pytest.raises(EnvironmentProblem, match="vacuumdb --analyze-only failed: "):
        _analyze(Unreachable())
