"""The fault drills: their pieces on a real server, a small drill end to end, and a power cut
of the virtual machine (where qemu is here or can be installed); nothing left behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psutil
import psycopg
import pytest

from conformance import manifests, tools
from conformance.drills import load, report, runner, verify, vm
from conformance.drills.campaign import run as run_drill
from conformance.live.runner import apply_schema
from conformance.pg.binaries import locate
from conformance.targets.native import NativeTarget
from tests.project import ROOT

M = manifests.load(ROOT / "manifests")
SCHEMA = load.SCHEMA


def _ours() -> set:
    """Servers, VMs and scratch folders a drill could leave."""
    # Zombies are not left running: killed servers stay zombies here until PID 1 reaps them.
    procs = {p.pid for p in psutil.process_iter(["name", "status"])
             if p.info["name"] in ("postgres", vm.QEMU) and p.info["status"] != psutil.STATUS_ZOMBIE}
    folders = {p.name for p in Path(tempfile.gettempdir()).glob("pc-*")}
    return procs | folders


def test_cpio_archive_reads_back(tmp_path):
    """The initramfs format, read by busybox's own cpio."""
    busybox = tools.find("busybox-static")
    if busybox is None:
        pytest.skip(tools.reason("busybox-static"))
    import subprocess
    import stat

    archive = tmp_path / "a.cpio"
    with open(archive, "wb") as out:
        vm._cpio_entry(out, "bin", stat.S_IFDIR | 0o755, ino=1)
        vm._cpio_entry(out, "bin/x", stat.S_IFREG | 0o755, b"abc" * 7, ino=2)
        vm._cpio_entry(out, "TRAILER!!!", 0)
    listed = subprocess.run([busybox, "cpio", "-t"], stdin=open(archive, "rb"), capture_output=True, text=True)
    assert listed.stdout.split() == ["bin", "bin/x"], listed.stderr
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run([busybox, "cpio", "-i", "-d"], stdin=open(archive, "rb"), cwd=extract, check=True, capture_output=True)
    assert (extract / "bin" / "x").read_bytes() == b"abc" * 7


@pytest.mark.live
def test_verify_counts_lost_and_altered_rows():
    with NativeTarget(M) as target:
        apply_schema(target)
        acked = []
        with psycopg.connect(**target.conninfo("app")) as conn:
            for i in range(3):
                rid, line, cust = f"{load.PREFIX}v-{i}", f"0100000000{i}", f"CUST-{i}"
                load._request(conn, rid, line, cust)
                acked.append(load.Acked(rid, 0.0, load.digest(rid, line, cust)))
        su = target.conninfo("superuser")
        pg_amcheck = target.binaries.bindir / "pg_amcheck"
        intact = verify.inspect(su, acked, 1.0, pg_amcheck)
        assert (intact.lost, intact.wrong_rows, intact.amcheck, intact.corrupt) == ([], [], [], False)
        with psycopg.connect(**su, autocommit=True) as conn:
            conn.execute(f"DELETE FROM {SCHEMA}.pc_kos_integration_log WHERE request_id = %s", (acked[0].request_id,))
            conn.execute(f"DELETE FROM {SCHEMA}.pc_product_change_history WHERE request_id = %s", (acked[0].request_id,))
            conn.execute(f"UPDATE {SCHEMA}.pc_product_change_history SET customer_id = 'CUST-X' WHERE request_id = %s",
                         (acked[1].request_id,))
        damage = verify.inspect(su, acked, 1.0, pg_amcheck)
        assert damage.lost == [acked[0].request_id] and damage.lost_ms == 1000.0
        assert damage.wrong_rows == [acked[1].request_id] and damage.corrupt


@pytest.mark.live
def test_a_small_drill_end_to_end_leaves_nothing(tmp_path):
    before = _ours()
    drill = run_drill(M, "native", runner.Plan(kills=2, cuts=0, load_seconds=(0.3, 0.8)), power=False)
    by = {(t.config, t.fault): t for t in drill.trials}
    assert {f for _, f in by} == {runner.PROCESS_KILL, runner.INIT_KILL, runner.BACKUP_KILL}
    durable = [t for t in drill.trials if t.config == "durable"]
    assert all(t.recovered and not t.corrupt for t in drill.trials), [t for t in drill.trials if t.details]
    assert sum(t.lost for t in durable) == 0, "the durable baseline loses no acknowledged commit to a process kill"
    assert sum(t.acked for t in durable if t.fault == runner.PROCESS_KILL) > 0, "the load ran"
    assert by[("plan", runner.INIT_KILL)].lost == 0, "the init commits durably whatever the server's settings"
    paths = report.write(drill, tmp_path)
    text = paths[0].read_text()
    assert "| durable | process kill | 2 | 2 of 2 |" in text and "power cuts not drilled: --no-power" in text
    assert _ours() - before == set(), "a server or a scratch folder was left behind"


@pytest.mark.live
@pytest.mark.slow
def test_a_power_cut_of_the_vm(tmp_path):
    """One cut per configuration: the durable baseline keeps every acknowledged commit."""
    missing = vm.ensure_qemu(lambda m: None) or vm.unavailable_reason()
    if missing:
        pytest.skip(missing)
    from conformance.drills import power

    before = _ours()
    plan = runner.Plan(kills=0, cuts=1, load_seconds=(1.5, 2.5))
    pg_amcheck = locate().bindir / "pg_amcheck"
    configs = {c.name: c for c in runner.chosen(M)}
    import random

    durable = power.power_cuts(M, configs["durable"], plan, random.Random(1), pg_amcheck, lambda m: None)
    assert len(durable) == 1 and durable[0].recovered and not durable[0].corrupt, durable
    assert durable[0].acked > 0 and durable[0].lost == 0, durable
    assert _ours() - before == set(), "a VM, a server or a scratch folder was left behind"


@pytest.mark.parametrize("kill,outcome", [
    (dict(hit=True, finished=True), "missed"),      # the dump had finished: no kill during a backup
    (dict(hit=False, finished=False), "missed"),    # pg_dump never seen dumping
    (dict(hit=True, finished=False, still_running=True), "failed"),  # outlived the wait: never judged
    (dict(hit=True, finished=False), "judged"),
])
def test_a_kill_during_a_backup_counts_only_when_it_hit_a_running_dump(kill, outcome):
    """It used to count a backup that finished before the kill as survived, and never judged a
    script that outlived its join."""
    from conformance.drills.runner import BackupKill, judge_backup_kill

    facts = BackupKill(**{"still_running": False, "old_kept": True, "partial": (), "dumps_after_failure": (), **kill})
    got, corrupt, details = judge_backup_kill(facts)
    assert got == outcome and not corrupt
    assert details if outcome != "judged" else not details
    damaged = BackupKill(hit=True, finished=False, still_running=False, old_kept=False, partial=(".x.partial",),
                         dumps_after_failure=())
    assert judge_backup_kill(damaged)[:2] == ("judged", True)
