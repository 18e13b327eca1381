"""The benchmark's parts that decide what it reports: parsing pgbench and pg_test_fsync,
the configurations read from the ConfigMap, paired gains and verdicts, the tuning check's
judge, and the three report files. The harness itself runs in the live tuning check
(tests/test_live_native.py) and in `nox -s bench`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from conformance import manifests
from conformance.bench import harness, pgbench, report, stats
from conformance.bench.configs import configurations
from conformance.live.tuning_checks import judge
from tests.project import ROOT, ProjectCopy

PGBENCH_OUT = """\
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 4
number of clients: 2
duration: 3 s
number of transactions actually processed: 5679
latency average = 1.055 ms
initial connection time = 4.113 ms
tps = 1895.431210 (without initial connection time)
"""

FSYNC_OUT = """\
Compare file sync methods using one 8kB write:
(in wal_sync_method preference order, except fdatasync is Linux's default)
        open_datasync                     10988.384 ops/sec      91 usecs/op
        fdatasync                         10524.104 ops/sec      95 usecs/op
        fsync                              9391.775 ops/sec     106 usecs/op
"""


def test_pgbench_output_and_logs_are_read(tmp_path):
    assert pgbench.parse_output(PGBENCH_OUT) == (1895.43121, 5679)
    with pytest.raises(pgbench.PgbenchError, match="no tps line"):
        pgbench.parse_output("pgbench: error: connection refused\n")
    (tmp_path / "log-x.123").write_text("0 0 1500 0 1764100000 1\n0 1 2500 0 1764100000 2\n")
    (tmp_path / "log-x.123.1").write_text("1 0 500 0 1764100000 3\n")
    run = pgbench.RunResult(1.0, 3, pgbench.read_latencies(tmp_path / "log-x"))
    assert sorted(run.latencies_ms) == [0.5, 1.5, 2.5] and run.percentile(50) == 1.5 and run.percentile(99) == 2.5
    assert not list(tmp_path.iterdir()), "pgbench's log files are removed once read"


def test_pg_test_fsync_ceiling_is_the_fdatasync_line():
    assert harness.parse_fsync(FSYNC_OUT) == 10524.104
    assert harness.parse_fsync("nothing") is None


def test_the_manifests_configuration_is_read_from_the_configmap(tmp_path):
    configs = {c.name: c for c in configurations(manifests.load(ROOT / "manifests"))}
    assert list(configs) == ["durable", "fsync=off", "synchronous_commit=off", "full_page_writes=off", "plan-12.1",
                             "manifests"]
    # Ours (docs/deviations.md `conf-fsync`, `conf-full-page-writes`) beside the plan's text.
    assert configs["manifests"].values == {"fsync": "on", "synchronous_commit": "off", "full_page_writes": "on"}
    assert configs["manifests"].from_configmap and not configs["plan-12.1"].from_configmap
    assert configs["plan-12.1"].values == {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    assert configs["durable"].values == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    project = ProjectCopy(tmp_path)
    project.conf("fsync = on", "fsync = off")
    changed = {c.name: c for c in configurations(manifests.load(project.manifests))}
    assert changed["manifests"].values["fsync"] == "off"


def test_options_need_scale_of_at_least_the_clients():
    with pytest.raises(ValueError, match="scale must be at least the number of clients"):
        harness.Options(rounds=1, duration=1, clients=8, scale=2, fsync_seconds=0)
    assert harness.rotated([1, 2, 3], 1) == [2, 3, 1] and harness.rotated([1, 2, 3], 3) == [1, 2, 3]


def _sample(r, config, tps, fpi=0.0, wal=1000, flushes=None, workload="tpcb-like", tx=1000):
    return harness.Sample(r, config, workload, tps, tx, 1.0, 2.0, 3.0, int(wal * tx), 6 * tx, int(fpi * tx),
                          None if flushes is None else int(flushes * tx))


def _measurement(rows) -> harness.Measurement:
    configs = configurations(manifests.load(ROOT / "manifests"))
    m = harness.Measurement(harness.QUICK, configs, machine={"target": "native", "cpus": 2, "platform": "test"})
    m.samples = [_sample(*row) for row in rows]
    m.server_version, m.fsync_ops_per_s = "14.23", 10000.0
    m.commands = ["pgbench --builtin=tpcb-like --client=2"]
    ours = next(c for c in configs if c.from_configmap)
    m.settings = {name: {"setting": value, "unit": None, "source": "configuration file"}
                  for name, value in ours.values.items()}
    return m


# round, configuration, tps, full-page images, WAL bytes and WAL flushes per transaction
HEALTHY = [(r, c, tps, fpi, wal, flushes) for r in (1, 2, 3) for c, tps, fpi, wal, flushes in [
    ("durable", 1000 + r, 0.8, 6600, 0.9), ("fsync=off", 1500, 0.8, 6600, 0.0),
    ("synchronous_commit=off", 1300, 0.8, 6600, 0.01), ("full_page_writes=off", 1000, 0.0, 400, 0.9),
    ("plan-12.1", 1600, 0.0, 400, 0.0), ("manifests", 1300, 0.8, 6600, 0.01)]]


def test_gains_are_paired_by_round_and_judged_against_the_claims():
    gains = {(g.setting, g.metric): g for g in stats.gains(_measurement(HEALTHY))}
    fsync = gains[("fsync", "throughput")]
    assert fsync.claimed_pct == 30 and fsync.verdict == "disagree" and 49 < fsync.median_pct < 50
    fpw_wal = gains[("full_page_writes", "WAL bytes per transaction (reduction)")]
    assert fpw_wal.claimed_pct == 15 and round(fpw_wal.median_pct) == 94 and fpw_wal.verdict == "disagree"
    assert gains[("full_page_writes", "throughput")].verdict == ""
    agreeing = [(r, c, tps) for r, c, tps, *_ in HEALTHY if c != "fsync=off"] + \
               [(1, "fsync=off", 1250), (2, "fsync=off", 1350), (3, "fsync=off", 1320)]
    assert {g.setting: g for g in stats.gains(_measurement(agreeing))}["fsync"].verdict == "agree"


def _plan_tps(*per_round: float):
    """HEALTHY, our configuration's throughput per round replaced (the durable baseline's is 1001-1003)."""
    return [(r, c, per_round[r - 1] if c == "manifests" else tps, *rest) for r, c, tps, *rest in HEALTHY
            if r <= len(per_round)]


def test_tuning_judge_passes_the_configmap_and_fails_what_it_guards():
    from conformance.results import Inconclusive

    assert judge(_measurement(HEALTHY)) == []
    # Commits that waited for their flush: synchronous_commit=off did not take.
    waited = [(r, c, tps, fpi, wal, 0.9 if c == "manifests" else flushes) for r, c, tps, fpi, wal, flushes in HEALTHY]
    (finding,) = judge(_measurement(waited))
    assert finding.path == "synchronous_commit (plan 12.1)" and not isinstance(finding, Inconclusive)
    assert finding.found.startswith("0.90 (1170.0 flushes a second at 1300 transactions a second)")
    assert "at most 50% of the durable baseline's 0.90 flushes per transaction" in finding.expected
    m = _measurement(HEALTHY)
    m.settings["fsync"]["setting"] = "off"  # the server runs without the figures' fsync = on
    (finding,) = judge(m)
    assert finding.path == "fsync (plan 12.1)" and finding.expected == "on in effect" and finding.found == "off"


def test_a_configmap_that_drops_the_dev_tuning_fails_on_the_plans_figures():
    """The server as a ConfigMap with synchronous_commit = on makes it: every commit flushes,
    as in the durable baseline. Judged against the plan's figures, not the ConfigMap's text."""
    m = _measurement([(r, c, tps, fpi, wal, 0.9 if c == "manifests" else flushes)
                      for r, c, tps, fpi, wal, flushes in HEALTHY])
    m.settings["synchronous_commit"]["setting"] = "on"
    from conformance.results import Inconclusive

    findings = judge(m)
    assert [f.path for f in findings] == ["synchronous_commit (plan 12.1)"] * 2
    assert (findings[0].expected, findings[0].found) == ("off in effect", "on")
    assert not any(isinstance(f, Inconclusive) for f in findings)
    assert findings[1].expected.startswith("commits that do not wait for a WAL flush")


def test_at_a_throughput_the_wal_writer_alone_can_flush_for_the_flush_count_is_inconclusive():
    """At 8 transactions a second the WAL writer's 5 flushes a second are 0.6 per transaction:
    a commit's flush cannot be told from the writer's."""
    from conformance.results import Inconclusive

    slow = [(r, c, 8.0 if c in ("durable", "manifests") else tps, fpi, wal, 0.6 if c == "manifests" else flushes)
            for r, c, tps, fpi, wal, flushes in HEALTHY]
    findings = [f for f in judge(_measurement(slow)) if f.path.startswith("synchronous_commit")]
    (finding,) = findings
    assert isinstance(finding, Inconclusive) and "within what the WAL writer alone flushes" in finding.found
    unmeasured = [(r, c, tps, fpi, wal, None if c == "durable" else flushes) for r, c, tps, fpi, wal, flushes in HEALTHY]
    (finding,) = judge(_measurement(unmeasured))
    assert isinstance(finding, Inconclusive) and "not measured" in finding.found and "durable baseline" in finding.found


def test_throughput_decides_only_where_the_rounds_do():
    """The ConfigMap's configuration 30% slower in every one of three rounds fails; a noisy spread
    across the threshold warns; a single round never decides (it failed on the docker target
    in one of two runs of the same commit: "-30% in every round")."""
    from conformance.results import Inconclusive

    (slow,) = judge(_measurement(_plan_tps(700, 701, 699)))
    assert not isinstance(slow, Inconclusive) and slow.path == "throughput (plan 12.1)"
    assert "-30%, -30%, -30% per round, 95% interval" in slow.found
    (noisy,) = judge(_measurement(_plan_tps(700, 1050, 900)))
    assert isinstance(noisy, Inconclusive) and "holds both" in noisy.found
    (one,) = judge(_measurement(_plan_tps(700)))
    assert isinstance(one, Inconclusive) and "too few rounds to judge" in one.found
    assert harness.CHECK.rounds >= 3 and harness.CHECK.configs == ("durable", "manifests")


def test_an_inconclusive_finding_warns_and_does_not_fail_the_run():
    from conformance.registry import Check
    from conformance.results import Finding, Inconclusive, Status

    warn = Inconclusive("f", "o", "p", "e", "x")
    check = Check("live-x", "12.1", "t", lambda ctx: [warn], (), "live")
    assert check.run(None).status is Status.WARNED
    assert Check("live-x", "12.1", "t", lambda ctx: [warn, Finding("f", "o", "p", "e", "y")], (),
                 "live").run(None).status is Status.FAILED
    from conformance.cli import _exit_code

    assert _exit_code([check.run(None)]) == 0


def test_report_writes_markdown_json_and_chart(tmp_path):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"benchmarks": [{"name": "test_gate_wall_time", "group": "gate", "stats": {
        "median": 1.39, "min": 1.3, "max": 1.5, "rounds": 5}}]}))
    when = datetime(2026, 11, 26, tzinfo=timezone.utc)
    md, js, png = report.write(_measurement(HEALTHY), tmp_path / "reports", suite, now=when)
    assert [p.name for p in (md, js, png)] == ["bench-2026-11-26.md", "bench-2026-11-26.json", "bench-2026-11-26.png"]
    text = md.read_text()
    assert "| fsync | tpcb-like | throughput | +50% | [+50%, +50%] | +30% | disagree |" in text
    assert "test_gate_wall_time | 1.39 s" in text and "pgbench --builtin=tpcb-like" in text
    data = json.loads(js.read_text())
    assert len(data["samples"]) == 18 and data["gains"] and data["suite"][0]["median_s"] == 1.39
    assert "product-change" in data["workload_scripts"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    for path in (md, js):
        assert "dev_password" not in path.read_text()


def test_bench_on_an_absent_target_measured_nothing_exit_3(tmp_path):
    """kind cannot run here (tests/test_kind_target.py): the bench says so, exit 3, or 0 when allowed."""
    from conformance.targets.kind import unavailable_reason

    if unavailable_reason() is None:
        pytest.skip("kind runs here")
    argv = [sys.executable, "-m", "conformance", "bench", "--target", "kind", "--output", str(tmp_path)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and proc.stderr.startswith("error: the kind target cannot run here")
    allowed = subprocess.run([*argv, "--allow-skip"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0 and allowed.stderr.startswith("skipped: the kind target cannot run here")
    assert not list(tmp_path.iterdir())


def test_what_an_upgrade_changes_is_paired_by_round():
    from conformance.bench.majors import Comparison, markdown

    def s(r, major, tps, wal):
        return harness.Sample(r, f"PostgreSQL {major}", "tpcb-like", tps, 100, 1.0, 2.0, 3.0, wal * 100, 100, 0)

    c = Comparison(14, 18, harness.CHECK, {"PostgreSQL 14": "14.23", "PostgreSQL 18": "18.6"},
                   [s(1, 14, 100, 400), s(1, 18, 120, 400), s(2, 14, 50, 400), s(2, 18, 60, 420)])
    throughput = next(x for x in c.changes() if x[1] == "throughput (tps)")
    assert [round(v, 6) for v in throughput[2:]] == [20.0, 20.0, 20.0], "paired by round, not by medians"
    wal = next(x for x in c.changes() if x[1] == "WAL bytes per transaction")
    assert [round(v, 6) for v in wal[3:]] == [0.0, 5.0]
    text = markdown(c)
    assert "| tpcb-like | throughput (tps) | +20.0% [+20.0, +20.0] |" in text and "| PostgreSQL 18 | 18.6 |" in text


@pytest.mark.live
@pytest.mark.slow
def test_two_majors_are_measured_side_by_side(tmp_path):
    from conformance.bench import majors

    options = harness.Options(rounds=2, duration=1, clients=2, scale=2, fsync_seconds=0, workloads=("tpcb-like",))
    by_major = {14: manifests.load(ROOT / "manifests"), 15: manifests.load(ROOT / "upgrade" / "pg15")}
    c = majors.compare(by_major, "native", options, lambda m: None)
    assert c.versions["PostgreSQL 14"].startswith("14.") and c.versions["PostgreSQL 15"].startswith("15.")
    assert sorted((s.round, s.config) for s in c.samples) == [(1, "PostgreSQL 14"), (1, "PostgreSQL 15"),
                                                             (2, "PostgreSQL 14"), (2, "PostgreSQL 15")]
    assert {metric for _, metric, *_ in c.changes()} == {"throughput (tps)", "p95 latency", "WAL bytes per transaction"}
    assert majors.write(c, tmp_path).read_text().startswith("# PostgreSQL 15 against 14")


def test_the_suites_figures_are_set_against_their_peers():
    suite = [{"name": "test_gate_wall_time", "median_s": 0.3}, {"name": "test_kubernetes_validate_one_version_wall_time",
             "median_s": 0.25}, {"name": "test_native_run_wall_time", "median_s": 10.0},
             {"name": "test_fresh_server_wall_time", "median_s": 2.0}]
    ratios = {ours: (peer, round(r, 2)) for ours, peer, r, _ in report.suite_ratios(suite)}
    assert ratios == {"test_gate_wall_time": ("test_kubernetes_validate_one_version_wall_time", 1.2),
                      "test_native_run_wall_time": ("test_fresh_server_wall_time", 5.0)}
