"""python -m conformance check | run | policy | bench | drills | rules | images | runbook | ...

Exit codes: 0 all checks pass, 1 a check failed, 2 the input or the environment cannot be used,
3 nothing was checked: the target or tool the command needs cannot run here (--allow-skip: 0,
every check reported as skipped).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from conformance.drills.names import CONFIGS, FAULTS
from conformance.errors import EnvironmentProblem, InputError, NothingChecked
from conformance.pg.binaries import major_argument
from conformance.report import FORMATS, render
from conformance.runbooks.model import BOOKS
from conformance.results import Status


def _count(text: str) -> int:
    """A number of trials (argparse's type=): 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, 0 or more")
    return int(text)


def _default_manifests() -> Path:
    return Path("manifests")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifests", type=Path, default=_default_manifests(),
                        help="directory of the manifests (default: manifests)")
    parser.add_argument("--sql", type=Path, default=None, help="schema SQL directory (default: MANIFESTS/../sql)")
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument("--output", type=Path, default=None, help="write the report here instead of stdout")
    parser.add_argument("--junit", type=Path, default=None, help="also write a JUnit XML report here")
    parser.add_argument("--summary", type=Path, default=None,
                        help="also append the markdown traceability table here (e.g. $GITHUB_STEP_SUMMARY)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list skipped checks and their reasons")


def _allow_skip(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-skip", action="store_true",
                        help="where the target or tool cannot run here, report the checks as skipped and exit 0 "
                             "(default: exit 3, nothing was checked)")


def _unless_allowed(args, reason: str | None) -> bool:
    """True when the run cannot happen here and the user allowed that; NothingChecked when
    they did not."""
    if reason is None:
        return False
    if not getattr(args, "allow_skip", False):
        raise NothingChecked(f"{reason}; nothing was checked (--allow-skip to report it as skipped)")
    print(f"skipped: {reason}", file=sys.stderr)
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check the manifests against the plan, without a cluster")
    _common(check)
    check.add_argument("--k8s-versions", default="1.30-1.35", help="Kubernetes versions to validate against (A-B or A,B)")
    check.add_argument("--pg-major", type=major_argument, default=None,
                       help="the manifests target PostgreSQL N (upgrade/pgN/); default: the plan's 14")
    check.add_argument("--base", default=None, metavar="REF|FOLDER",
                       help="also judge the change from REF (a git commit, branch or tag) or FOLDER (manifests, or "
                            "a checkout): what applying it does to the running dev database")
    check.add_argument("--no-schema-compare", action="store_true",
                       help="with --base: do not start an embedded server to compare a changed sql/")
    run = sub.add_parser("run", help="start the configuration on a target and check the running server")
    _common(run)
    run.set_defaults(manifests=None)  # resolved with --pg-major (_run_manifests)
    run.add_argument("--target", choices=("native", "docker", "kind", "cluster"), default="native")
    run.add_argument("--keep", action="store_true", help="keep the server/cluster and its files after the run")
    run.add_argument("--allow-writes", action="store_true", help="cluster target: allow checks that write")
    _allow_skip(run)
    run.add_argument("--context", default=None, help="cluster target: kubectl context (default: $CONFORMANCE_CONTEXT, "
                                                     "else the current one)")
    run.add_argument("--cluster-name", default=None, help="kind target: cluster to create or reuse (default pc-conformance)")
    run.add_argument("--pg-major", type=major_argument, default=None,
                     help="PostgreSQL N (14 to 18) instead of the plan's 14: native runs it; docker and "
                          "cluster check manifests that target it (upgrade/pgN)")
    policy = sub.add_parser("policy", help="checkov's Kubernetes checks on the rendered manifests: 0 failed, "
                                           "every skip with its reason")
    policy.add_argument("--manifests", type=Path, default=_default_manifests())
    policy.add_argument("--checkov", default=None, help="the checkov program (default: beside this Python, else PATH)")
    policy.add_argument("--format", choices=("text", "json"), default="text")
    policy.add_argument("-v", "--verbose", action="store_true", help="also list the skipped checks and their reasons")
    bench = sub.add_parser("bench", help="measure what the dev tuning (plan 12.1) buys, side by side on one server")
    bench.add_argument("--manifests", type=Path, default=_default_manifests())
    bench.add_argument("--target", choices=("native", "docker", "kind"), default="native")
    bench.add_argument("--quick", action="store_true", help="3 rounds of 3 s runs instead of 5 of 20 s")
    bench.add_argument("--output", type=Path, default=Path("reports"), help="folder for the report (default reports/)")
    bench.add_argument("--pg-major", type=major_argument, default=None,
                       help="measure PostgreSQL N (its manifests: upgrade/pgN) instead of the plan's 14")
    bench.add_argument("--compare", type=major_argument, default=None, metavar="M",
                       help="with --pg-major N: measure N against M side by side (what the upgrade changes)")
    bench.add_argument("--suite-json", type=Path, default=None,
                       help="pytest-benchmark JSON of the suite itself, to include in the report")
    _allow_skip(bench)
    drills = sub.add_parser("drills", help="what the dev tuning costs under faults: process kills and power cuts, "
                                           "the durable baseline beside the manifests' configuration")
    drills.add_argument("--manifests", type=Path, default=_default_manifests())
    drills.add_argument("--target", choices=("native", "docker"), default="native",
                        help="where the process faults strike (power cuts always run in a virtual machine)")
    drills.add_argument("--quick", action="store_true", help="5 kills and 3 power cuts per configuration (about 5 "
                                                           "minutes here) instead of 20 and 8")
    drills.add_argument("--kills", type=_count, default=None, metavar="N",
                        help="process kills per configuration (overrides --quick's and the default's)")
    drills.add_argument("--cuts", type=_count, default=None, metavar="N",
                        help="power cuts per configuration; 30 with none lost bounds the rate under 10%%")
    drills.add_argument("--faults", default=",".join(FAULTS), metavar="LIST",
                        help=f"which faults, comma-separated (default all: {','.join(FAULTS)})")
    drills.add_argument("--pg-major", type=major_argument, default=None,
                        help="drill PostgreSQL N with its manifests (upgrade/pgN) instead of the plan's 14")
    drills.add_argument("--configs", default=",".join(CONFIGS), metavar="LIST",
                        help="configurations, comma-separated: durable, manifests (the ConfigMap's), plan-12.1 "
                             "(the plan's text, all three off), or one dev setting off alone (fsync=off, "
                             f"synchronous_commit=off, full_page_writes=off); default {','.join(CONFIGS)}")
    drills.add_argument("--no-power", action="store_true", help="leave out the power cuts (no qemu)")
    drills.add_argument("--output", type=Path, default=Path("reports"), help="folder for the report (default reports/)")
    _allow_skip(drills)
    rules_cmd = sub.add_parser("rules", help="test the alert rules with promtool: each alarm of plan 8.1 fires "
                                             "just over its threshold after its duration, never just under")
    rules_cmd.add_argument("--manifests", type=Path, default=_default_manifests())
    rules_cmd.add_argument("--keep", type=Path, default=None, help="write the rule file and the tests to this folder")
    _allow_skip(rules_cmd)
    images = sub.add_parser("images", help="local stand-ins for the manifests' images, for machines that cannot pull")
    images.add_argument("action", choices=("build", "list"), help="build: make the missing or outdated stand-ins; "
                                                                 "list: what is local, a stand-in or missing")
    images.add_argument("--manifests", type=Path, default=_default_manifests())
    rehearsal = sub.add_parser("upgrade-rehearsal", help="run docs/upgrade.md end to end: old major, rows, dump, "
                                                         "new major, restore, live checks, rows compared")
    rehearsal.add_argument("--from", dest="from_major", type=major_argument, default=14)
    rehearsal.add_argument("--to", dest="to_major", type=major_argument, required=True)
    rehearsal.add_argument("--target", choices=("native", "docker"), default="native")
    rehearsal.add_argument("--manifests", type=Path, default=_default_manifests())
    runbook = sub.add_parser("runbook", help="print a runbook for the manifests of a major: the exact commands, "
                                             "as a script (default) or markdown")
    runbook.add_argument("name", nargs="?", choices=BOOKS, help="which runbook")
    runbook.add_argument("--pg-major", type=major_argument, default=None,
                         help="the major the cluster runs (default: the plan's 14)")
    runbook.add_argument("--from", dest="from_major", type=major_argument, default=None,
                         help="upgrade: the major running now (default 14); rollback: the major to leave")
    runbook.add_argument("--to", dest="to_major", type=major_argument, default=None,
                         help="upgrade: the major to move to; rollback: the major to go back to (default 14)")
    runbook.add_argument("--dump", default=None, help="restore: the dump's file name (else $DUMP when it runs)")
    runbook.add_argument("--format", choices=("sh", "md"), default="sh")
    runbook.add_argument("--docs", action="store_true", help="write docs/runbooks/ (the runbooks for the plan's "
                                                             "major and its upgrade) instead of printing one")
    runbook.add_argument("--check", action="store_true", help="with --docs: exit 1 when a file differs")
    drill = sub.add_parser("restore-drill", help="the restore runbooks' database steps on a target: a dump "
                                                 "restored, a cut-short one refused, the v1.0 data-only restore, "
                                                 "pg_amcheck")
    drill.add_argument("--target", choices=("native", "docker"), default="native")
    overlays = sub.add_parser("upgrade-overlays", help="write upgrade/pgNN/ (the manifests on later "
                                                       "majors) from the plan data")
    overlays.add_argument("--manifests", type=Path, default=_default_manifests())
    overlays.add_argument("--check", action="store_true", help="exit 1 when a file differs, change nothing")
    checksum = sub.add_parser("config-checksum", help="rewrite the StatefulSet's checksum/config annotation from the "
                                                      "config ConfigMap (a postgresql.conf edit then restarts the pod)")
    checksum.add_argument("--manifests", type=Path, default=_default_manifests())
    checksum.add_argument("--check", action="store_true", help="exit 1 when the annotation is out of date, change nothing")
    contexts = sub.add_parser("setting-contexts", help="regenerate conformance/changes/setting-contexts.json from "
                                                      "each major's embedded server (pg_settings.context)")
    contexts.add_argument("--majors", default="14,15,16,17,18", help="comma-separated majors (default 14-18)")
    gen = sub.add_parser("schema-configmap", help="regenerate manifests/postgresql-product-change-schema.yaml from sql/")
    gen.add_argument("--manifests", type=Path, default=_default_manifests())
    gen.add_argument("--sql", type=Path, default=None)
    gen.add_argument("--check", action="store_true", help="exit 1 when the file differs from sql/, change nothing")
    return parser


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")


def _report(args, results, context: dict) -> int:
    """The report in its format, the JUnit file and markdown summary CI keeps beside it, a
    one-line summary when the report went to a file; the exit code."""
    _emit(render(args.format, results, context), args.output)
    if args.junit is not None:
        _emit(render("junit", results, context), args.junit)
    if args.summary is not None:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        with open(args.summary, "a", encoding="utf-8") as handle:
            handle.write(render("markdown", results, context) + "\n")
    if args.output is not None:
        from conformance.report.text import summary
        print(f"{context['what']}: {summary(results)} (report: {args.output})")
    return _exit_code(results)


def _exit_code(results) -> int:
    return 1 if any(r.status in (Status.FAILED, Status.ERROR) for r in results) else 0


def cmd_check(args) -> int:
    from conformance import gate, manifests

    from conformance.plan import targeting

    loaded = manifests.load(args.manifests)
    ctx = gate.GateContext(loaded, sql_dir=args.sql or loaded.home.parent / "sql",
                           docs_dir=loaded.home.parent / "docs",
                           k8s_versions=gate.parse_versions(args.k8s_versions))
    with targeting(args.pg_major):
        results = gate.run(ctx)
    warnings = gate.end_of_life_warnings(loaded)
    context = {"what": "gate", "manifests": str(args.manifests), "verbose": args.verbose, "notes": warnings}
    if args.base is not None:
        from conformance.changes import baseline, runner
        from conformance.plan import figure

        base = baseline.resolve(args.base, args.manifests, ctx.sql_dir)
        try:
            with targeting(args.pg_major):
                results += runner.judge(base, loaded, ctx.sql_dir, args.pg_major or figure("pg-major").expected,
                                        schema=not args.no_schema_compare,
                                        progress=lambda m: print(f"[base] {m}", file=sys.stderr, flush=True),
                                        versions=ctx.k8s_versions)
        finally:
            base.close()
        context.update(base=base.label, what=f"gate and change from {base.label}")
    return _report(args, results, context)


def _run_manifests(args) -> Path:
    """The manifests a run checks: with --pg-major N and no --manifests, N's own (upgrade/pgN/);
    given ones must run N, else the checks would hold N's server to another major's manifests."""
    from conformance.rehearsal import manifests_dir

    if args.manifests is None:
        return manifests_dir(_default_manifests(), args.pg_major) if args.pg_major else _default_manifests()
    return args.manifests


def cmd_run(args) -> int:
    from conformance import manifests, workload
    from conformance.live.runner import run_live

    args.manifests = _run_manifests(args)
    loaded = manifests.load(args.manifests)
    found = workload.image_major(loaded)
    if args.pg_major is not None and found is not None and found != args.pg_major:
        raise InputError(f"{args.manifests}: its StatefulSet runs PostgreSQL {found} "
                         f"({workload.database(loaded).image}); --pg-major {args.pg_major} checks the manifests of "
                         f"{args.pg_major}: --manifests upgrade/pg{args.pg_major}, or leave --manifests out")
    # --manifests upgrade/pg18 alone: the server runs the major the manifests name.
    args.pg_major = args.pg_major or workload.major_beyond_plan(found)
    from conformance import targets
    from conformance.live.runner import target_options

    notes: list[str] = []
    # What the command line asks is checked first (exit 2), then whether the target runs (exit 3).
    target_options(args.target, args.keep, args.allow_writes, None, args.manifests, args.context, args.cluster_name,
                   args.pg_major)
    _unless_allowed(args, targets.unavailable_reason(args.target))
    results = run_live(loaded, args.target, keep=args.keep, allow_writes=args.allow_writes,
                       progress=lambda m: print(f"[{args.target}] {m}", file=sys.stderr, flush=True),
                       manifests_dir=args.manifests, context=args.context, cluster=args.cluster_name, notes=notes,
                       pg_major=args.pg_major)
    return _report(args, results, {"what": f"live ({args.target})", "target": args.target,
                                   "manifests": str(args.manifests), "verbose": args.verbose, "notes": notes})


def cmd_policy(args) -> int:
    from conformance import manifests, policy

    loaded = manifests.load(args.manifests)
    checkov = policy.find_checkov(args.checkov)
    results, version = policy.run(loaded, checkov)
    if args.format == "json":
        sys.stdout.write(policy.as_json(results, version) + "\n")
    else:
        for r in results:
            if r.status == "failed" or (args.verbose and r.status == "skipped"):
                print(r.line_text())
        print(policy.summary(results, version))
    return 1 if any(r.status == "failed" for r in results) else 0


def cmd_bench(args) -> int:
    from conformance import manifests, targets
    from conformance.bench import harness, report
    from conformance.live.runner import apply_schema, target_options

    from conformance.plan import figure, targeting
    from conformance.rehearsal import manifests_dir

    if args.compare is not None and args.pg_major is None:
        raise InputError("--compare M goes with --pg-major N: the major measured against M")
    major = args.pg_major or figure("pg-major").plan
    loaded = manifests.load(manifests_dir(args.manifests, major))
    if _unless_allowed(args, targets.unavailable_reason(args.target)):
        return 0
    progress = lambda m: print(f"[bench] {m}", file=sys.stderr, flush=True)  # noqa: E731
    options = harness.QUICK if args.quick else harness.FULL
    if args.compare is not None:
        from conformance.bench import majors

        by_major = {m: manifests.load(manifests_dir(args.manifests, m)) for m in (args.compare, major)}
        print(f"wrote {majors.write(majors.compare(by_major, args.target, options, progress), args.output)}")
        return 0
    target = targets.create(args.target, loaded, **target_options(args.target, False, True, progress, args.manifests,
                                                                    pg_major=args.pg_major))
    with targeting(args.pg_major), target:
        if args.target in ("native", "docker"):
            apply_schema(target)
        measurement = harness.Harness(target, loaded, options, progress).measure()
    for path in report.write(measurement, args.output, args.suite_json):
        print(f"wrote {path}")
    return 0


def cmd_drills(args) -> int:
    from conformance.drills import command

    return command.run(args.manifests, args.target, quick=args.quick, kills=args.kills, cuts=args.cuts,
                       faults=command.parse_faults(args.faults), power=not args.no_power, pg_major=args.pg_major,
                       output=args.output, allow_skip=args.allow_skip, configs=command.parse_configs(args.configs),
                       progress=lambda m: print(f"[drills] {m}", file=sys.stderr, flush=True))


def cmd_rules(args) -> int:
    import tempfile

    from conformance import manifests, tools
    from conformance.monitoring import rule_tests, rules

    loaded = manifests.load(args.manifests)
    if rules.rule_object(loaded) is None:
        raise InputError(f"{args.manifests}: no PrometheusRule (manifests/monitoring/)")
    promtool = tools.find("promtool", progress=lambda m: print(m, file=sys.stderr))
    if _unless_allowed(args, tools.reason("promtool") if promtool is None else None):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        proc = rule_tests.run(loaded, promtool, workdir)
    sys.stdout.write(proc.stdout + proc.stderr)
    cases = len(rule_tests.tests(loaded, "rules.yaml")["tests"])
    print(f"rules: {cases} promtool tests, {'all passed' if proc.returncode == 0 else 'FAILED'}")
    return 0 if proc.returncode == 0 else 1


def cmd_images(args) -> int:
    from conformance import manifests
    from conformance.images import builder, standins
    from conformance.targets import docker_engine

    loaded = manifests.load(args.manifests)
    docker_engine.require()
    import docker

    client = docker.from_env(timeout=600)
    try:
        if args.action == "build":
            progress = lambda m: print(f"[images] {m}", file=sys.stderr, flush=True)  # noqa: E731
            for built in builder.build_all(client, loaded, progress):
                print(f"{built.image}: {built.name} {'built' if built.rebuilt else 'up to date'} ({built.built_from})")
            return 0
        for image in builder.manifest_images(loaded):
            if builder.existing(client, image) is not None:
                print(f"{image}: local (pulled or loaded)")
                continue
            standin = builder.existing(client, standins.standin_name(image))
            if standin is not None:
                print(f"{image}: stand-in {standins.standin_name(image)}, {builder.describe(standin)}")
            else:
                print(f"{image}: missing (pull it, or: python -m conformance images build)")
        return 0
    finally:
        client.close()


def cmd_upgrade_rehearsal(args) -> int:
    from conformance import rehearsal

    report = rehearsal.rehearse(args.manifests, args.from_major, args.to_major, args.target,
                                progress=lambda m: print(f"[rehearsal] {m}", file=sys.stderr, flush=True))
    sys.stdout.write(rehearsal.render(report))
    return 0 if report.passed else 1


def cmd_upgrade_overlays(args) -> int:
    from conformance import manifests, upgrade_overlays

    loaded = manifests.load(args.manifests)
    if args.check:
        stale = upgrade_overlays.differing(loaded, args.manifests)
        for path in stale:
            print(f"{path} differs from the plan data: run python -m conformance upgrade-overlays")
        return 1 if stale else 0
    for path in upgrade_overlays.write(loaded, args.manifests):
        print(f"wrote {path}")
    return 0


def cmd_restore_drill(args) -> int:
    from conformance.runbooks import drill

    outcomes = drill.run(Path.cwd(), args.target,
                         progress=lambda m: print(f"[restore-drill] {m}", file=sys.stderr, flush=True))
    sys.stdout.write(drill.render(outcomes, args.target))
    return 0 if all(o.passed for o in outcomes) else 1


def cmd_runbook(args) -> int:
    from conformance.runbooks import docs, render
    from conformance.runbooks.books import build

    root = Path.cwd()
    if args.docs:
        if args.check:
            stale = docs.differing(root)
            for path in stale:
                print(f"{path} differs from the runbooks' source: run python -m conformance runbook --docs")
            return 1 if stale else 0
        for path in docs.write(root):
            print(f"wrote {path}")
        return 0
    if args.name is None:
        raise InputError(f"runbook: name one of {', '.join(BOOKS)} (or --docs)")
    book = build(args.name, root, major=args.pg_major, to_major=args.to_major, from_major=args.from_major,
                 dump_file=args.dump)
    sys.stdout.write(render.script(book) if args.format == "sh" else render.markdown(book))
    return 0


def cmd_config_checksum(args) -> int:
    from conformance import config_checksum, manifests

    loaded = manifests.load(args.manifests)
    sts, carried, wanted = config_checksum.current(loaded)
    if carried == wanted:
        print(f"{sts.file}: {config_checksum.ANNOTATION} is up to date")
        return 0
    if args.check:
        print(f"{sts.file}: {config_checksum.ANNOTATION} is {carried}, the ConfigMap's content is {wanted}: "
              "run python -m conformance config-checksum")
        return 1
    config_checksum.write(loaded)
    print(f"{sts.file}: {config_checksum.ANNOTATION} set to {wanted} (the pod restarts when this is applied)")
    return 0


def cmd_setting_contexts(args) -> int:
    from conformance.changes import settings_context

    try:
        majors = [int(m) for m in args.majors.split(",")]
    except ValueError:
        raise InputError(f"--majors {args.majors!r}: expected numbers like 14,15") from None
    path = settings_context.write(majors, progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"wrote {path} ({', '.join(map(str, majors))})")
    return 0


def cmd_schema_configmap(args) -> int:
    from conformance import schema_configmap

    sql_dir = args.sql or args.manifests.parent / "sql"
    if args.check:
        if schema_configmap.differs(sql_dir, args.manifests):
            print(f"{args.manifests / schema_configmap.FILE_NAME} differs from {sql_dir}: run nox -s schema")
            return 1
        return 0
    print(f"wrote {schema_configmap.write(sql_dir, args.manifests)}")
    return 0


def _terminate(signum, frame):
    # SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so servers are stopped on the way out.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    commands = {"check": cmd_check, "run": cmd_run, "policy": cmd_policy, "bench": cmd_bench, "drills": cmd_drills, "rules": cmd_rules, "schema-configmap": cmd_schema_configmap,
                "images": cmd_images, "upgrade-overlays": cmd_upgrade_overlays,
                "upgrade-rehearsal": cmd_upgrade_rehearsal, "runbook": cmd_runbook,
                "restore-drill": cmd_restore_drill,
                "config-checksum": cmd_config_checksum, "setting-contexts": cmd_setting_contexts}
    try:
        return commands[args.command](args)
    except NothingChecked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (InputError, EnvironmentProblem) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
