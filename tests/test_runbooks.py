"""The runbooks are tested, not only rehearsed: every command of every runbook (printed for
each major, written in docs/, and in the README's cluster sections) is checked against the
rendered manifests of its major and against what kubectl and the PostgreSQL tools do
(conformance.runbooks.lint), and the nine defects issue 26 found in the old text
(tests/data/runbooks-v0/) are each caught (item 3, verification against another major's
manifests, by the CLI itself now: `run --pg-major N` takes that major's manifests). The database steps run for real in
test_rehearsal.py and in the restore drill below."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.plan import MAJOR_IMAGE_TAGS
from conformance.runbooks import books, docs, kubectl_model, lint, render
from conformance.targets import docker_engine
from tests.project import ROOT

OLD = ROOT / "tests" / "data" / "runbooks-v0"
MAJORS = sorted(MAJOR_IMAGE_TAGS)
NO_DOCKER = docker_engine.unavailable_reason()


def _printed():
    """(id, runbook, the majors it acts on) for every runbook the CLI prints."""
    for name in books.BOOKS:
        for major in MAJORS:
            if name == "upgrade" and major > 14:
                yield f"upgrade-14-to-{major}", books.build(name, ROOT, to_major=major), [14, major]
            elif name == "rollback" and major > 14:
                yield f"rollback-{major}-to-14", books.build(name, ROOT, from_major=major), [14, major]
            elif name == "from-v1" and major == 14:
                yield "from-v1", books.build(name, ROOT), [14]
            elif name not in ("upgrade", "rollback", "from-v1"):
                yield f"{name}-{major}", books.build(name, ROOT, major=major), [major]


PRINTED = list(_printed())


def _rules(findings) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in findings:
        out.setdefault(f.rule, []).append(f.command)
    return out


def _old(name: str, majors: list[int]) -> dict[str, list[str]]:
    return _rules(lint.lint_markdown((OLD / name).read_text(), name, ROOT, majors))


# -- every runbook we print or write is clean ------------------------------------------------------
@pytest.mark.parametrize("ident,book,majors", PRINTED, ids=[p[0] for p in PRINTED])
def test_every_printed_runbook_passes_the_checks(ident, book, majors):
    findings = lint.lint_script(render.script(book), f"{ident}.sh", ROOT, majors)
    findings += lint.lint_markdown(render.markdown(book), f"{ident}.md", ROOT, majors, scope_level=1)
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize("path,majors,level,sections", [
    ("docs/operations.md", [14], 2, None),
    ("docs/upgrade.md", [14, 18], 1, None),
    ("README.md", [14, 18], 2, ("Apply to a cluster", "The way off PostgreSQL 14")),
    *[(str(p.relative_to(ROOT)), [14, 18], 1, None) for p in sorted((ROOT / "docs" / "runbooks").glob("*.md"))],
])
def test_the_written_runbooks_pass_the_checks(path, majors, level, sections):
    findings = lint.lint_markdown((ROOT / path).read_text(), path, ROOT, majors, level, sections)
    assert findings == [], "\n".join(map(str, findings))
    # and they hold commands: a document the checks read nothing from would pass anything
    from conformance.runbooks import shellparse

    blocks = shellparse.markdown_blocks((ROOT / path).read_text(), level)
    assert any(b.section.startswith(sections) for b in blocks) if sections else blocks


def test_the_written_runbooks_are_what_the_manifests_give():
    assert docs.differing(ROOT) == [], "run: python -m conformance runbook --docs"


@pytest.mark.parametrize("ident,book,majors", PRINTED, ids=[p[0] for p in PRINTED])
def test_every_printed_script_passes_shellcheck(ident, book, majors, tmp_path):
    script = tmp_path / f"{ident}.sh"
    script.write_text(render.script(book))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    proc = subprocess.run([shellcheck, "-s", "bash", "-S", "warning", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_a_runbook_for_another_major_names_that_majors_claim_image_and_pgdata():
    book = books.build("node-crash", ROOT, major=18)
    text = render.script(book)
    assert "postgresql-data-pg18-postgresql-product-change-0" in text and "postgres:18.6-bookworm" in text
    assert "/var/lib/postgresql/18/docker/postmaster.pid" in text and "postgres:14.23" not in text


def test_the_cli_prints_a_runbook_and_refuses_a_bad_request_in_one_line():
    ok = subprocess.run([sys.executable, "-m", "conformance", "runbook", "restore", "--pg-major", "17"], cwd=ROOT,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "upgrade/pg17/restore/" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "conformance", "runbook", "upgrade", "--to", "14"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --to 14 is not after PostgreSQL 14"


# -- the nine defects of the old text, each caught ----------------------------------------------------
def test_item1_the_old_ad_hoc_restore_never_gets_a_shell():
    """kubectl run's --overrides is a JSON merge patch: its containers list replaces the one
    `-- bash`, -i and -t made; the postgres image's own command (the server) runs instead."""
    words = ["kubectl", "run", "-n", "phonebill-dev", "restore", "--rm", "-it", "--image=postgres:14.23-bookworm"]
    assert kubectl_model.run_pod(kubectl_model.parse(words + ["--", "bash"]))["spec"]["containers"][0]["args"] == ["bash"]
    old = (OLD / "operations.md").read_text()
    override = old[old.index("--overrides='") + len("--overrides='"):old.index("' -- bash")]
    pod = kubectl_model.run_pod(kubectl_model.parse(words + [f"--overrides={override}", "--", "bash"]))
    container = pod["spec"]["containers"][0]
    assert "args" not in container and "command" not in container and pod["spec"]["restartPolicy"] == "Always"
    found = _old("operations.md", [14])
    assert any(c.startswith("kubectl run -n phonebill-dev restore") for c in found["run-no-command"])
    assert found["run-restart-always"]
    # what the old text then suggests inside that shell, into the live database
    suggested = old[old.index("# inside: ") + len("# inside: "):].splitlines()[0]
    inside = _rules(lint.lint_markdown(f"```bash\n{suggested}\n```\n", "suggested", ROOT, [14]))
    assert inside.keys() >= {"restore-not-atomic", "writers-running"}


def test_item2_the_old_upgrade_restores_whatever_dump_is_newest():
    found = _old("upgrade.md", [14, 18])
    assert found.keys() >= {"restore-unpinned", "cronjob-not-suspended", "rows-not-compared"}


def test_item3_the_old_verification_checks_the_other_majors_manifests(tmp_path):
    """The old text's `run --pg-major 18` checked 18's server against manifests/ (14's): the CLI's
    default was the defect, and the CLI now takes the major's manifests (the same text is right
    today, so the lint lets it pass); naming another major's manifests is refused."""
    found = _old("upgrade.md", [14, 18])
    assert "verify-wrong-manifests" not in found
    from conformance.cli import _run_manifests, build_parser

    args = build_parser().parse_args(["run", "--target", "cluster", "--pg-major", "18"])
    assert _run_manifests(args) == Path("upgrade/pg18")  # was manifests/ before the fix
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "cluster", "--manifests",
                           "manifests", "--pg-major", "18"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: manifests: its StatefulSet runs PostgreSQL 14")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_item4_the_old_jobs_are_not_run_again_and_their_failure_is_waited_out():
    upgrade, operations = _old("upgrade.md", [14, 18]), _old("operations.md", [14])
    assert any("pre-upgrade" in c for c in upgrade["job-not-rerun"])
    assert any("restore" in c for c in upgrade["job-not-rerun"])
    assert len(upgrade["wait-complete-only"]) == 3 and operations["wait-complete-only"]


def test_item5_the_old_operations_act_on_14s_disk_after_an_upgrade_to_18():
    found = _old("operations.md", [18])
    assert any("postgresql-data-postgresql-product-change-0" in c for c in found["name-unknown"])
    assert found["claim"] and found["image"]


def test_item6_the_old_move_from_v1_trusts_a_table_of_contents_and_collides_with_seed_rows():
    found = _old("operations.md", [14])
    assert found["toc-only-check"] == ["pg_restore --list v1.dump"]
    assert found["data-only-seeded"] and found["writers-running"]


def test_item7_the_old_node_crash_recovery():
    found = _old("operations.md", [14])
    assert found["multi-attach"] and found["scale-back-regardless"]
    old = (OLD / "operations.md").read_text()
    assert "`pg_amcheck --heapallindexed`" in old
    amcheck = _rules(lint.lint_markdown("```bash\npg_amcheck --heapallindexed -d product_change_db\n```\n", "old",
                                        ROOT, [14]))
    assert amcheck.keys() == {"amcheck-missing-extension"}


def test_item8_the_old_rollback_is_refused_and_leaves_the_volume_behind():
    found = _old("upgrade.md", [14, 18])
    assert "kubectl apply -k manifests/" in found["job-not-rerun"]
    # the old text deleted the claim in prose only; the retire runbook without its volume step:
    book = books.build("retire-claim", ROOT, major=14)
    text = render.script(book).replace('kubectl delete pv "$(cat "$state/volume")" --wait\n', "")
    assert _rules(lint.lint_script(text, "retire", ROOT, [14])).keys() == {"released-pv"}


def test_item9_the_downtime_starts_when_the_writers_stop():
    book = books.build("upgrade", ROOT, to_major=18)
    first, last = book.downtime
    assert book.steps[first].action == "stop-writers" and book.steps[last].title.startswith("Start the writers")
    old = (OLD / "upgrade.md").read_text()
    assert "downtime from step 2 to step 6" in old  # the dump (2) to the restore (6): writers and pod stop left out
    from conformance.runbooks import cluster_costs

    costs = cluster_costs.estimate([s.action for s in book.steps], book.facts.grace_seconds)
    named = {c.what for c, _ in costs}
    assert any("shutdown" in w for w in named) and any("attached" in w for w in named)
    assert any("image" in w for w in named) and all(c.source for c, _ in costs)


# -- every rule can fail ---------------------------------------------------------------------------
POD = """apiVersion: v1
kind: Pod
metadata: {{name: x, namespace: phonebill-dev}}
spec:
  restartPolicy: Never
  securityContext: {{runAsNonRoot: true, runAsUser: 999, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
    - name: x
      image: postgres:18.6-bookworm
      command: ["rm", "{rm}"]
      securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: ["ALL"]}}}}
      volumeMounts: [{{name: data, mountPath: {mount}}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}]
"""
SNIPPETS = {
    "namespace": "kubectl delete job postgresql-product-change-backup-x --ignore-not-found",
    "name-unknown": "kubectl -n phonebill-dev get statefulset postgresql-nosuch",
    "container": "kubectl -n phonebill-dev logs postgresql-product-change-0 -c nosuch",
    "wait-complete-only": "kubectl -n phonebill-dev wait --for=condition=complete job/postgresql-product-change-schema-init",
    "job-not-rerun": "kubectl -n phonebill-dev create job x --from=cronjob/postgresql-product-change-backup",
    "toc-only-check": "pg_restore -l x.dump",
    "amcheck-missing-extension": "pg_amcheck -d product_change_db",
    "verify-wrong-manifests": ".venv/bin/python -m conformance run --target cluster --manifests upgrade/pg16 "
                              "--pg-major 18",
    "unparsed": "kubectl get pod 'unclosed",
    "pgdata-path": "kubectl apply -f - <<EOF\n" + POD.format(claim="postgresql-data-pg18-postgresql-product-change-0",
                                                             mount="/data", rm="/data/pgdata/postmaster.pid") + "EOF",
    "pod-security": "kubectl apply -f - <<EOF\n" + POD.format(
        claim="postgresql-data-pg18-postgresql-product-change-0", mount="/var/lib/postgresql",
        rm="/var/lib/postgresql/18/docker/postmaster.pid").replace("runAsNonRoot: true", "runAsNonRoot: false") + "EOF",
    "run-no-stdin": "kubectl -n phonebill-dev run x -i --restart=Never --image=postgres:14.23-bookworm "
                    "--overrides='{\"spec\":{\"containers\":[{\"name\":\"x\",\"image\":\"postgres:14.23-bookworm\","
                    "\"command\":[\"true\"]}]}}'",
}


@pytest.mark.parametrize("rule", sorted(SNIPPETS))
def test_each_rule_fails_on_a_command_that_breaks_it(rule):
    found = _rules(lint.lint_markdown(f"```bash\n{SNIPPETS[rule]}\n```\n", "snippet.md", ROOT, [14, 18]))
    assert rule in found, found


def test_every_rule_has_a_failing_case_in_these_tests():
    source = Path(__file__).read_text()
    missing = [rule for rule in lint.RULES if f'"{rule}"' not in source and f"[\"{rule}\"]" not in source]
    assert missing == []


def test_the_override_types_kubectl_offers():
    words = ["kubectl", "run", "x", "-i", "--image=i", "--", "sh"]
    patch = {"spec": {"containers": [{"name": "x", "env": [{"name": "A", "value": "1"}]}]}}
    strategic = kubectl_model.run_pod(kubectl_model.parse(
        words[:5] + [f"--overrides={json.dumps(patch)}", "--override-type=strategic"] + words[5:]))
    assert strategic["spec"]["containers"][0]["args"] == ["sh"] and strategic["spec"]["containers"][0]["stdin"]
    ops = [{"op": "add", "path": "/spec/restartPolicy", "value": "Never"}]
    as_json = kubectl_model.run_pod(kubectl_model.parse(
        words[:5] + [f"--overrides={json.dumps(ops)}", "--override-type=json"] + words[5:]))
    assert as_json["spec"]["restartPolicy"] == "Never" and as_json["spec"]["containers"][0]["args"] == ["sh"]


# -- the restore drill: the runbooks' database steps, run ---------------------------------------------
def _assert_drill(target: str) -> None:
    from conformance.runbooks import drill

    outcomes = drill.run(ROOT, target)
    assert [o for o in outcomes if not o.passed] == [], drill.render(outcomes, target)
    assert len(outcomes) == 7


@pytest.mark.live
def test_the_restore_drill_natively():
    _assert_drill("native")


@pytest.mark.live
@pytest.mark.docker
@pytest.mark.skipif(NO_DOCKER is not None, reason=f"needs Docker: {NO_DOCKER}")
def test_the_restore_drill_in_docker(client, images):
    _assert_drill("docker")


@pytest.mark.parametrize("kubectl,retired", [
    ('echo "postgres:18.1-bookworm"', True),              # another major runs: the claim may go
    ('echo "$SAME"', False),                              # the claim's own major still runs
    ("echo ''", False),                                   # no such container: no answer
    ('echo "the server is unreachable" >&2; return 1', False),  # no answer at all
])
def test_retire_claim_goes_on_only_when_another_image_is_seen(tmp_path, kubectl, retired):
    """The retire-claim runbook's first step, with kubectl stood in: a failed or empty read of
    what the StatefulSet runs stops the runbook (it used to pass, and the claim was deleted next)."""
    from conformance.runbooks import shell

    book = books.build("retire-claim", ROOT, major=14)
    script = tmp_path / "step.sh"
    script.write_text("\n".join([
        "set -euo pipefail", *shell.assignments(book.facts), shell.FUNCTIONS,
        f"kubectl() {{ {kubectl}; }}", f"SAME={book.facts.image}", book.steps[0].commands[0]]) + "\n")
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30)
    assert (proc.returncode == 0) is retired, proc.stdout + proc.stderr
    assert retired or "runbook: " in proc.stderr


@pytest.mark.live
def test_the_writers_count_leaves_out_the_session_asking():
    """In v1.0 the app account itself counts the app account's sessions: its own one is no writer."""
    import psycopg

    from conformance import manifests
    from conformance.live.runner import apply_schema
    from conformance.runbooks import shell
    from conformance.targets.native import NativeTarget

    facts = books.build("restore", ROOT, major=14).facts
    with NativeTarget(manifests.load(ROOT / "manifests")) as target:
        apply_schema(target)
        count = shell.sessions_sql(facts.app_user)
        with psycopg.connect(**target.conninfo("app"), autocommit=True) as asking:
            assert asking.execute(count).fetchone()[0] == 0
            with psycopg.connect(**target.conninfo("app")):  # a writer
                assert asking.execute(count).fetchone()[0] == 1


def test_the_runbooks_wait_and_run_as_the_manifests_say(project):
    """The waits follow the Jobs' deadlines and the startupProbe, and the node-crash cleanup pod
    runs with the StatefulSet's own security contexts: a change of the manifests reaches them."""
    shutil.copytree(ROOT / "upgrade", project.root / "upgrade")
    project.set("postgresql-product-change-schema-init-job.yaml", "Job", ("spec", "activeDeadlineSeconds"), 1200)
    sts = "postgresql-product-change-statefulset.yaml"
    project.set(sts, "StatefulSet", ("spec", "template", "spec", "securityContext", "fsGroupChangePolicy"), "Always")
    project.set(sts, "StatefulSet", ("spec", "template", "spec", "containers", 0, "startupProbe", "failureThreshold"),
                75)
    project.set(sts, "StatefulSet", ("spec", "template", "spec", "containers", 0, "securityContext", "runAsUser"), 4321)
    apply = render.script(books.build("apply", project.root, major=14))
    assert 'job_wait "$schema_job" 1260' in apply and "--timeout=1050s" in apply  # 1200 + 60; 75 x 10 + 300
    crash = books.build("node-crash", project.root, major=14)
    pod = yaml_pod(render.script(crash))
    assert pod["spec"]["securityContext"]["fsGroupChangePolicy"] == "Always"
    assert pod["spec"]["containers"][0]["securityContext"]["runAsUser"] == 4321


def yaml_pod(script: str) -> dict:
    import yaml

    body = script[script.index("kubectl apply -f - <<EOF\n") + len("kubectl apply -f - <<EOF\n"):]
    return yaml.safe_load(body[:body.index("\nEOF")])
