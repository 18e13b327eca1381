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
from conformance.drills.names import TRIAL_NAMES
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
    assert by[("manifests", runner.INIT_KILL)].lost == 0, "the init commits durably whatever the server's settings"
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


# -- a postmaster.pid left by a crash (issue 24) ------------------------------------------

def _pidfile_drill(target):
    from conformance.drills import pidfile

    trials = pidfile.drill(target)
    return {t.case: t for t in trials}, pidfile.second_server_refused(target)


@pytest.mark.live
def test_a_stale_postmaster_pid_is_cleared_by_the_manifests_start_path_native():
    """Empty, naming a live process of the server's account, naming PID 1, naming a PID that
    does not exist: back by itself each time; a second server while it runs is still refused."""
    with NativeTarget(M) as target:
        by_case, (refused, said) = _pidfile_drill(target)
    assert len(by_case) == 4 and all(t.came_back for t in by_case.values()), by_case
    assert refused and 'lock file "postmaster.pid" already exists' in said, said


@pytest.mark.live
def test_without_the_init_container_a_stale_lock_keeps_the_server_down(tmp_path):
    """The drill can fail: the manifests without their recovery step, and the empty lock and
    the live PID of the server's account keep the server down, as PostgreSQL decides."""
    from tests.project import DELETE, ProjectCopy

    copy = ProjectCopy(tmp_path)
    copy.set("postgresql-product-change-statefulset.yaml", "StatefulSet", ("spec", "template", "spec", "initContainers"),
             DELETE)
    with NativeTarget(manifests.load(copy.manifests)) as target:
        by_case, (refused, _) = _pidfile_drill(target)
    down = {case: t.details for case, t in by_case.items() if not t.came_back}
    assert set(down) == {"empty", "a live process of the server's account (a sidecar's place)"}, by_case
    assert "is empty" in down["empty"][0]
    assert 'lock file "postmaster.pid" already exists' in down["a live process of the server's account (a sidecar's place)"][0]
    assert refused, "a second server is refused with or without the step"


def test_the_vm_runs_the_init_containers_of_the_manifests():
    """The power-cut VM starts the server as the manifests do: their init containers' scripts,
    PGDATA mapped below the guest's data disk (18's layout too), nothing of a Secret."""
    from conformance.drills import power
    from conformance.rehearsal import manifests_dir

    (name, script), = power.guest_init_scripts(M)
    assert name == "clear-stale-pid" and "export PGDATA=/data/pgdata\n" in script and "postmaster.pid" in script
    (_, script18), = power.guest_init_scripts(manifests.load(manifests_dir(ROOT / "manifests", 18)))
    assert "export PGDATA=/data/18/docker\n" in script18
    assert "PASSWORD" not in script and "POSTGRES_" not in script


@pytest.mark.parametrize("k,n,at_most", [(0, 30, 0.0951), (0, 3, 0.6316), (1, 10, 0.3942), (5, 5, 1.0), (0, 0, 1.0)])
def test_upper_bounds_at_95_percent(k, n, at_most):
    from conformance.drills.bounds import upper_bound

    assert abs(upper_bound(k, n) - at_most) < 0.0005


def test_a_small_sample_is_said_to_be_small():
    from conformance.drills.bounds import trials_for

    assert trials_for(0.10) == 29

    def row(trials):
        return report.Row("manifests", runner.POWER_CUT, trials, trials, 1.0, 1.0, 0, 0, 0, 0, 100, 0, ())

    (said,) = report.sample_warnings([row(5)])
    assert "none of 5 trials" in said and "29 trials with none would bound it under 10%" in said
    assert report.sample_warnings([row(30)]) == []


@pytest.mark.parametrize("answering,ready", [(0.2, 5), (5.0, 5), (5.1, 10), (12.0, 15)])
def test_ready_at_the_first_readiness_probe_after_the_server_answers(answering, ready):
    from conformance.drills.availability import readiness

    probe = readiness(M)  # the manifests': first after 5 s, then every 5 s
    assert (probe.initial_delay, probe.period) == (5, 5)
    assert probe.ready_after(answering) == ready


def test_monthly_cost_against_the_budget():
    from conformance.drills import availability

    fixed = availability.monthly(4, ready_s=5, not_back_rate=0.0)
    assert abs(fixed.hours - 4 * (availability.NODE_BACK_S + 5) / 3600) < 1e-9
    person = availability.monthly(4, ready_s=5, not_back_rate=1 / 3)
    assert person.hours > 5 and person.share > fixed.share * 10


def test_the_report_gives_bounds_and_warns_on_small_samples(tmp_path):
    from conformance.drills.campaign import Drill
    from conformance.drills.pidfile import PidTrial
    from conformance.drills.availability import readiness

    drill = Drill("native", runner.QUICK, readiness=readiness(M))
    drill.trials = [runner.Trial("manifests", runner.POWER_CUT, i, acked=10, recovery_s=7.0, clean_start_s=6.0)
                    for i in range(10)]
    drill.trials[3].recovered, drill.trials[3].details = False, ['lock file "postmaster.pid" is empty']
    drill.pidfile = [PidTrial("empty", "(empty)", came_back=True, seconds=0.1)]
    drill.second_server = (True, 'FATAL:  lock file "postmaster.pid" already exists')
    text = report.markdown(drill, "stamp", "x.png")
    assert "| manifests | power cut | 10 | 9 of 10 | 1 of 10, at most 39% |" in text
    assert "none of 10 trials corruption found, yet each rate may be up to 26%; 29 trials" in text
    assert "| empty | (empty) | yes | 0.1 s |" in text and "refused, as it must be" in text
    assert "| manifests | power cut | 1.0 s | 5 s |" in text
    assert "Node crashes a month, as measured" in text and "Assumed, not measured" in text


@pytest.mark.parametrize("argv,code,message", [
    (["--faults", "nope"], 2, "--faults 'nope': unknown nope; choose from process-kill"),
    (["--faults", ","], 2, "--faults ',': none named"),
    (["--configs", ","], 2, "--configs ',': none named"),
    (["--configs", "nope"], 2, "--configs: no configuration nope"),
    (["--kills", "0", "--faults", "process-kill"], 3, "no fault left to drill"),
    (["--cuts", "-1"], 2, "'-1': a whole number, 0 or more"),
])
def test_drills_command_line_errors_are_one_line(argv, code, message):
    """2: the input cannot be used; 3: nothing was left to check."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "conformance", "drills", "--no-power", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == code and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def _drill(*trials):
    from conformance.drills.campaign import Drill

    return Drill("native", runner.QUICK, trials=list(trials))


def _trial(config, fault, **kw):
    return runner.Trial(config, fault, 1, acked=100, **kw)


@pytest.mark.parametrize("trials,drilled,code,said", [
    # every judged trial back, synchronous_commit=off losing its last commits to a kill: its accepted risk
    ([_trial("durable", runner.PROCESS_KILL), _trial("manifests", runner.PROCESS_KILL, lost=3)], ["process-kill"], 0, ""),
    # a fault asked for whose every trial missed was not drilled
    ([_trial("manifests", runner.PROCESS_KILL), _trial("manifests", runner.BACKUP_KILL, missed=True)],
     ["process-kill", "backup-kill"], 1, "error: backup-kill: no trial judged"),
    # the durable baseline losing an acknowledged commit is a defect, not a risk taken
    ([_trial("durable", runner.PROCESS_KILL, lost=1)], ["process-kill"], 1, "damage no configuration accepts"),
    # a killed backup that cost a dump, in any configuration
    ([_trial("manifests", runner.BACKUP_KILL, corrupt=True)], ["backup-kill"], 1, "damage no configuration accepts"),
    ([_trial("manifests", runner.POWER_CUT, recovered=False)], ["power-cut"], 1, "did not come back by itself"),
    ([_trial("manifests", runner.POWER_CUT), _trial("manifests", runner.INIT_KILL, failed="the VM died")],
     ["power-cut", "init-kill"], 1, "not judged: the VM died"),
])
def test_the_drills_verdict(trials, drilled, code, said):
    from conformance.drills import command

    got, lines = command.verdict(_drill(*trials), drilled, taken=command.accepted(runner.chosen(M)))
    assert got == code and (said in "\n".join(lines) if said else lines == []), lines


@pytest.mark.parametrize("trial,code", [
    # the manifests keep fsync and full_page_writes on (docs/deviations.md #12): corruption is a defect
    (_trial("manifests", runner.POWER_CUT, corrupt=True), 1),
    # plan 12.1 as written takes it on after a power cut, with its lost commits
    (_trial("plan-12.1", runner.POWER_CUT, corrupt=True, lost=40), 0),
    # ... but not after a process kill: the node's page cache kept everything
    (_trial("plan-12.1", runner.PROCESS_KILL, corrupt=True), 1),
    # synchronous_commit on: a lost commit is a defect, whatever fsync is
    (_trial("fsync=off", runner.POWER_CUT, lost=1), 1),
    (_trial("full_page_writes=off", runner.PROCESS_KILL, lost=1), 1),
    (_trial("synchronous_commit=off", runner.POWER_CUT, lost=25), 0),
    # the init commits durably in every configuration
    (_trial("manifests", runner.INIT_KILL, lost=6), 1),
])
def test_damage_fails_the_drill_unless_its_configuration_takes_it_on(trial, code):
    from conformance.drills import command
    from conformance.drills.runner import chosen

    taken = command.accepted(chosen(M, ("durable", "manifests", "plan-12.1", "fsync=off", "synchronous_commit=off",
                                        "full_page_writes=off")))
    assert taken.corrupt == {"plan-12.1", "fsync=off", "full_page_writes=off"}
    assert taken.lost == {"manifests", "plan-12.1", "synchronous_commit=off"}
    fault = next(f for f, name in TRIAL_NAMES.items() if name == trial.fault)
    got, lines = command.verdict(_drill(trial), [fault], taken=taken)
    assert got == code, lines
    assert ("damage no configuration accepts" in "\n".join(lines)) == (code == 1)


def test_a_drill_that_judged_nothing_checked_nothing():
    from conformance.drills import command
    from conformance.errors import NothingChecked

    with pytest.raises(NothingChecked):
        command.verdict(_drill(_trial("manifests", runner.BACKUP_KILL, missed=True)), ["backup-kill"])
    got, lines = command.verdict(_drill(_trial("manifests", runner.PROCESS_KILL), _trial("manifests", runner.BACKUP_KILL,
                                                                                        missed=True)),
                                 ["process-kill", "backup-kill"], allow_skip=True)
    assert got == 0 and lines == ["skipped: backup-kill: no trial judged (missed, not judged, or not drilled: "
                                  "see the report)"]


@pytest.mark.parametrize("said,refused", [
    ("a stale postmaster.pid (it is empty or unreadable): left by a crash", True),
    ("a stale postmaster.pid (PID 4242 is sleep, not a server of this data directory): left by a crash", True),
    ("a stale postmaster.pid (PID 77 has exited (a zombie nobody reaped)): left by a crash", True),
    ("a stale postmaster.pid (PID 1 is sh, not a server of this data directory): left by a crash", False),
    ("a stale postmaster.pid (PID 123 does not exist): left by a crash", False),
    ("", False),
])
def test_which_removed_locks_postgresql_would_have_refused(said, refused):
    assert report.refused_alone(said) is refused


@pytest.mark.parametrize("lock,refused", [
    ("", True),            # an empty lock: PostgreSQL alone refuses it
    ("dead", False),       # a PID that does not exist: PostgreSQL clears it itself
    ("live", True),        # a live process that is no server of this data directory
    (None, None),          # no lock: nothing said, nothing removed
])
def test_the_report_reads_what_the_manifests_init_script_says(tmp_path, lock, refused):
    """The report's count of locks PostgreSQL alone would have refused comes from the words of
    the StatefulSet's own init script (run here with sh), not from hand-typed lines."""
    import subprocess

    from conformance import workload

    db = workload.database(M)
    (step,) = [c for c in workload.init_containers(M, db.owner) if "postmaster.pid" in " ".join(c.spec["command"])]
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        if lock is not None:
            pid = {"": "", "dead": str(dead.pid), "live": str(sleeper.pid)}[lock]
            (pgdata / "postmaster.pid").write_text(pid + ("\n" + str(pgdata) + "\n" if pid else ""))
        proc = subprocess.run(step.spec["command"], env={"PGDATA": str(pgdata), "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=30)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert proc.returncode == 0, proc.stderr
    said = runner.cleared(proc.stdout + proc.stderr)
    if lock is None:
        assert said == ""  # nothing to clear, and nothing said
    else:
        assert said and not (pgdata / "postmaster.pid").exists(), proc.stdout + proc.stderr
        assert report.refused_alone(said) is refused, said
