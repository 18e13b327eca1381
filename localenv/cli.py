"""localenv: the Product-Change dev database on this machine.

  up (default)   start it (initialising on first use) and print how to connect
  down           stop it; the data stays
  status         running or not, port, data directory and size, readiness
  env            shell exports with passwords: eval "$(python -m localenv env)"
  psql           an interactive psql (--as app|admin|readonly); arguments after -- go to psql
  logs           the server's log files (-f follows)
  reset --yes    delete the data and start fresh (backups stay)
  backup         the backup CronJob's script, into the laptop's backup folder
  restore FILE   restore a dump (the current data is saved first)
  upgrade --to N carry the data to PostgreSQL N with pg_upgrade (a backup first; undone on failure)
  migrate        apply a changed sql/ to the running database as the init Job would (a backup first)
  clone          a fresh database copied from a template of the dev database (--as, --json); its URLs
  clones         the clones on the server: owner, age, when they are swept
  drop NAME|--all  remove clones
  destroy        stop and remove everything this home made: data, clones, templates, containers,
                 volumes, networks (backups stay unless --with-backups); --yes or a confirmation

Exit codes: 0 done, 1 a command failed, 2 bad input or environment, 3 status: not running,
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from conformance.errors import EnvironmentProblem, InputError, one_line
from conformance.pg.binaries import major_argument
from localenv.connection import ROLES
from localenv.settings import ENV_HOME, ENV_PORT, Settings

BACKENDS = ("native", "docker")
NOT_RUNNING = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localenv", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=BACKENDS, default=os.environ.get("LOCALENV_BACKEND", "native"),
                        help="native: embedded PostgreSQL 14 (default); docker: the manifests' image")
    parser.add_argument("--home", type=Path, default=None,
                        help=f"where data and backups live (default: ${ENV_HOME}, else a per-user data directory)")
    parser.add_argument("--manifests", type=Path, default=None, help="manifests directory (default: the checkout's)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"exactly this port (default: ${ENV_PORT} or 5432 if free, else the next free one)")
    parser.add_argument("--pg-major", type=major_argument, default=None,
                        help="run PostgreSQL N (14 to 18) instead of the plan's 14; use its own --home "
                             "(a data directory is of one major)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("up", help="start (the default)")
    sub.add_parser("down", help="stop, keeping the data")
    status = sub.add_parser("status", help="running or not, port, data, readiness")
    status.add_argument("--json", action="store_true", help="machine-readable")
    env = sub.add_parser("env", help="shell exports, with the password")
    env.add_argument("--as", dest="role", choices=ROLES, default="app")
    psql = sub.add_parser("psql", help="interactive psql")
    psql.add_argument("--as", dest="role", choices=ROLES, default="app")
    psql.add_argument("psql_args", nargs="*", metavar="PSQL_ARG", help="passed to psql, e.g. -c 'SELECT 1'")
    logs = sub.add_parser("logs", help="server log files")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=200, help="lines of the newest file to show (default 200)")
    reset = sub.add_parser("reset", help="delete the data and start fresh")
    reset.add_argument("--yes", action="store_true", help="really delete the data")
    backup = sub.add_parser("backup", help="run the backup script into a local folder")
    backup.add_argument("--dir", type=Path, default=None, help="folder (default: HOME/backups)")
    restore = sub.add_parser("restore", help="restore a dump made by backup")
    restore.add_argument("file", type=Path)
    upgrade = sub.add_parser("upgrade", help="carry the data to another PostgreSQL major (pg_upgrade)")
    what = upgrade.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", type=major_argument, help="the major to upgrade to (15 to 18)")
    what.add_argument("--delete-old", action="store_true", help="delete the previous major's data an upgrade kept")
    sub.add_parser("migrate", help="apply a changed sql/ to the running database (a backup first)")
    clone = sub.add_parser("clone", help="a fresh database copied from a template of the dev database")
    clone.add_argument("--as", dest="role", choices=ROLES, default="app")
    clone.add_argument("--json", action="store_true", help="machine-readable, with the password")
    clone.add_argument("--owner-pid", type=int, default=None, metavar="PID",
                       help="the process the clone belongs to: swept when it ends (default: the one that ran "
                            "localenv, e.g. your shell or build tool)")
    clone.add_argument("--ttl", type=float, default=24.0, metavar="HOURS",
                       help="swept after this many hours even while its owner runs (default 24)")
    clones = sub.add_parser("clones", help="list the clones")
    clones.add_argument("--json", action="store_true")
    drop = sub.add_parser("drop", help="remove clones")
    drop.add_argument("names", nargs="*", default=[], metavar="NAME")
    drop.add_argument("--all", action="store_true", help="every clone on the server")
    destroy = sub.add_parser("destroy", help="remove everything this home made (like docker compose down -v)")
    destroy.add_argument("--yes", action="store_true", help="do not ask")
    destroy.add_argument("--with-backups", action="store_true", help="the backups folder too")
    return parser


def _progress(message: str) -> None:
    print(f"localenv: {message}", file=sys.stderr, flush=True)


def make_backend(args):
    from conformance import manifests as manifest_loader

    settings = Settings.resolve(home=args.home, manifests=args.manifests, port=args.port, pg_major=args.pg_major)
    if args.pg_major is not None and args.backend != "native":
        raise InputError("--pg-major is offered on the native backend; the docker backend runs the manifests' image")
    loaded = manifest_loader.load(settings.manifests)
    if args.backend == "docker":
        from localenv.docker_backend import DockerBackend

        return DockerBackend(settings, loaded, _progress)
    from localenv.native_backend import NativeBackend

    return NativeBackend(settings, loaded, _progress)


@contextmanager
def exclusive(settings: Settings):
    """One changing command at a time per home: two `up`s racing would both initdb."""
    import fcntl

    settings.home.mkdir(parents=True, exist_ok=True)
    settings.home.chmod(0o711)
    with open(settings.home / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EnvironmentProblem(f"another localenv command is working on {settings.home}; "
                                     "wait for it to finish") from None
        yield


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _print_endpoint(backend, endpoint) -> None:
    print(endpoint.describe(backend.settings.pgpass))


def cmd_up(backend, args) -> int:
    with exclusive(backend.settings):
        result = backend.up()
    ep = result.endpoint
    how = "already running" if result.already_running else ("created and started" if result.created else "started")
    preferred = backend.settings.port or backend.settings.preferred_port
    moved = "" if ep.port == preferred or result.already_running else f" ({preferred} is in use)"
    print(f"Product-Change dev database {how} ({backend.name}) on {ep.host}:{ep.port}{moved}")
    print(f"  data: {backend.settings.home}    stop: localenv down    logs: localenv logs")
    for note in result.notes:
        print(f"  note: {note}")
    _print_endpoint(backend, ep)
    return 0


def cmd_down(backend, args) -> int:
    with exclusive(backend.settings):
        stopped = backend.down()
    print("stopped; the data is kept (localenv up brings it back)" if stopped else "not running")
    return 0


def cmd_status(backend, args) -> int:
    st = backend.status()
    backups = sorted(backend.settings.backups.glob("*.dump")) if backend.settings.backups.is_dir() else []
    if args.json:
        print(json.dumps({"backend": st.backend, "running": st.running, "port": st.port,
                          "data_dir": str(st.data_dir), "data_bytes": st.data_bytes, "ready": st.ready,
                          "backups": [str(p) for p in backups], "note": st.note}, indent=2))
    else:
        state = f"running on 127.0.0.1:{st.port}" if st.running else "stopped"
        print(f"backend  {st.backend}\nstate    {state}\nready    {st.ready}\n"
              f"data     {st.data_dir}{'' if st.data_bytes is None else f' ({_size(st.data_bytes)})'}\n"
              f"backups  {backend.settings.backups} ({len(backups)} dumps)")
        if st.note:
            print(f"note     {st.note}")
    return 0 if st.running else NOT_RUNNING


def cmd_env(backend, args) -> int:
    print(backend.endpoint().exports(args.role, backend.settings.pgpass, with_password=True))
    return 0


def cmd_psql(backend, args) -> int:
    argv, env = backend.psql_argv(args.role, args.psql_args)
    sys.stdout.flush()
    os.execvpe(argv[0], argv, {**os.environ, **env})
    return 1  # not reached


def _tail(path: Path, lines: int) -> str:
    text = path.read_text(errors="replace").splitlines(keepends=True)
    return "".join(text[-lines:]) if lines > 0 else ""


def cmd_logs(backend, args) -> int:
    files = backend.log_files()
    if not files:
        print("no log files yet (the server has not run)")
        return 0
    newest = max(files, key=lambda p: p.stat().st_mtime)
    for path in files:
        if path != newest:
            print(f"==> {path} (older; {path.stat().st_size} bytes) <==")
    print(f"==> {newest} <==")
    sys.stdout.write(_tail(newest, args.lines))
    sys.stdout.flush()
    if args.follow:
        return _follow(backend, newest)
    return 0


def _follow(backend, path: Path) -> int:
    """tail -f, also across log rotation (a newer file appears)."""
    offset = path.stat().st_size
    try:
        while True:
            with open(path, errors="replace") as handle:
                handle.seek(offset)
                chunk = handle.read()
                offset = handle.tell()
            if chunk:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            files = backend.log_files()
            newer = max(files, key=lambda p: p.stat().st_mtime) if files else path
            if newer != path and newer.suffix == ".log":
                print(f"==> {newer} <==", flush=True)
                path, offset = newer, 0
                continue
            time.sleep(0.5)  # polling a file, not waiting for a server
    except KeyboardInterrupt:
        return 0


def cmd_reset(backend, args) -> int:
    if not args.yes:
        st = backend.status()
        size = "" if st.data_bytes is None else f" ({_size(st.data_bytes)})"
        print(f"error: reset deletes the data in {st.data_dir}{size}. Backups in "
              f"{backend.settings.backups} stay. Run `localenv backup` first if you need the data, "
              "then `localenv reset --yes`.", file=sys.stderr)
        return 2
    with exclusive(backend.settings):
        backend.down()
        backend.delete_data()
        _progress("data deleted; starting fresh")
        result = backend.up()
    print(f"Product-Change dev database reset and started ({backend.name}) on {result.endpoint.host}:{result.endpoint.port}")
    _print_endpoint(backend, result.endpoint)
    return 0


def cmd_backup(backend, args) -> int:
    with exclusive(backend.settings):
        path = backend.backup(args.dir or backend.settings.backups)
    print(f"backup written: {path} ({_size(path.stat().st_size)}); restore with: localenv restore {path}")
    return 0


def cmd_restore(backend, args) -> int:
    with exclusive(backend.settings):
        backend.restore(args.file.absolute())
    print(f"restored {args.file}")
    return 0


def cmd_upgrade(backend, args) -> int:
    from localenv import upgrade

    if backend.name != "native":
        raise InputError("upgrade is offered on the native backend")
    with exclusive(backend.settings):
        if args.delete_old:
            old = upgrade.delete_old(backend)
            print(f"deleted {old}" if old else "no data of an earlier major is kept")
            return 0
        done = upgrade.upgrade(backend, args.to)
    rows = ", ".join(f"{t} {n}" for t, n in done.tables.items())
    print(f"upgraded PostgreSQL {done.from_major} -> {done.to_major}: rows match ({rows}); "
          f"{done.checks_passed} live checks passed")
    print(f"  backup first: {done.backup}\n  PostgreSQL {done.from_major}'s data kept in {done.old_data} "
          f"(localenv upgrade --delete-old when you no longer need it)")
    return 0


def cmd_migrate(backend, args) -> int:
    from localenv import verification
    from localenv.state import State

    with exclusive(backend.settings):
        target = backend.running_target()
        state = State.load(backend.state_file)
        done = backend.migrate(target, state)
        missing = verification.missing(target)
    print(f"applied sql/ as the init Job would: {done.summary()}")
    print(f"  saved first: {done.backup} (localenv restore {done.backup} undoes it)")
    if missing:
        print(f"error: after the migration the database lacks {'; '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def _clones(backend, args, owner: str | None = None, ttl_hours: float | None = None):
    """The running server's clones, after sweeping those whose owner is gone or that expired."""
    from datetime import timedelta

    from localenv.clones import Clones

    target = backend.running_target()
    kwargs = {"owner": owner} if owner else {}
    if ttl_hours is not None:
        if not ttl_hours > 0:
            raise InputError(f"--ttl {ttl_hours:g}: a number of hours above 0")
        kwargs["ttl"] = timedelta(hours=ttl_hours)
    clones = Clones(target, _progress, passfile=str(backend.settings.pgpass), **kwargs)
    for name in clones.sweep():
        _progress(f"swept {name} (its owner process ended, or it expired)")
    return clones


def cmd_clone(backend, args) -> int:
    from conformance.targets.docker_janitor import owner
    from localenv.connection import write_pgpass

    pid = args.owner_pid or os.getppid()
    try:
        label = owner(pid)
    except Exception:
        raise InputError(f"--owner-pid {pid}: no such process") from None
    # No home lock: clones are the server's business (its advisory locks), and a build tool's
    # parallel forks may each ask for one at once.
    clones = _clones(backend, args, owner=label, ttl_hours=args.ttl)
    clone = clones.create(args.role)
    write_pgpass(backend.endpoint_of(clones.target), backend.settings.pgpass)
    if args.json:
        data = {**clone.as_json(with_password=True), "owner": label, "ttl_hours": args.ttl,
                "drop": f"localenv drop {clone.name}"}
        print(json.dumps(data, indent=2))
        return 0
    login = clone.endpoint.login(args.role)
    print(f"{clone.name}: a fresh copy of the dev database, as {login.user}")
    print(f"  libpq  {clone.url()}")
    print(f"  jdbc   {clone.jdbc_url}&user={login.user}")
    print(f"  export PGDATABASE={clone.name} PGUSER={login.user} PGPASSWORD={login.password}")
    print(f"  dropped by `localenv drop {clone.name}`, or when process {pid} ends, or after {args.ttl:g} h")
    return 0


def cmd_clones(backend, args) -> int:
    from datetime import datetime, timezone

    clones = _clones(backend, args)
    infos = clones.list()
    now = datetime.now(timezone.utc)
    if args.json:
        print(json.dumps([{"name": i.name, "role": i.role, "owner": i.owner, "owner_alive": i.owner_alive,
                           "created": i.created.isoformat(), "expires": i.expires.isoformat(),
                           "current_schema": i.template == clones.template} for i in infos], indent=2))
        return 0
    if not infos:
        print("no clones (localenv clone makes one)")
        return 0
    for i in infos:
        left = i.expires - now
        schema = "" if i.template == clones.template else ", an older schema"
        print(f"{i.name}  {i.role}  made {int(i.age(now).total_seconds() // 60)} min ago by {i.owner}{schema}; "
              f"swept when that process ends or in {max(0, int(left.total_seconds() // 60))} min")
    return 0


def cmd_drop(backend, args) -> int:
    if bool(args.names) == bool(args.all):
        raise InputError("drop takes clone names or --all (localenv clones lists them)")
    clones = _clones(backend, args)
    if args.all:
        dropped = clones.drop_all()
        print(f"dropped {len(dropped)} clones")
        return 0
    missing = [n for n in args.names if not clones.drop(n)]
    for name in args.names:
        if name not in missing:
            print(f"dropped {name}")
    if missing:
        print(f"error: no clone named {', '.join(missing)} (localenv clones lists them)", file=sys.stderr)
        return 1
    return 0


def cmd_destroy(backend, args) -> int:
    what = backend.describe_everything(with_backups=args.with_backups)
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"error: destroy removes {what}; run `localenv destroy --yes` to do it", file=sys.stderr)
            return 2
        answer = input(f"Remove {what}? This cannot be undone. Type yes to go on: ")
        if answer.strip().lower() != "yes":
            print("nothing removed")
            return 1
    with exclusive(backend.settings):
        removed = backend.destroy(with_backups=args.with_backups)
    for item in removed:
        print(f"removed {item}")
    if not args.with_backups and backend.settings.backups.exists():
        print(f"kept the backups in {backend.settings.backups} (destroy --with-backups removes them too)")
    return 0


def split_psql_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after `psql [--as ROLE] [--]` belongs to psql, options included."""
    if "psql" not in argv:
        return argv, []
    i = argv.index("psql") + 1
    while i < len(argv) and (argv[i] == "--as" or argv[i].startswith("--as=") or argv[i] in ("-h", "--help")):
        i += 2 if argv[i] == "--as" else 1
    rest = argv[i:]
    return argv[:i], rest[1:] if rest[:1] == ["--"] else rest


COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env, "psql": cmd_psql,
            "logs": cmd_logs, "reset": cmd_reset, "backup": cmd_backup, "restore": cmd_restore, "upgrade": cmd_upgrade,
            "migrate": cmd_migrate, "clone": cmd_clone, "clones": cmd_clones, "drop": cmd_drop, "destroy": cmd_destroy}


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv, psql_args = split_psql_args(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    args.psql_args = psql_args
    command = args.command or "up"
    signal.signal(signal.SIGTERM, _terminate)
    try:
        backend = make_backend(args)
        return COMMANDS[command](backend, args)
    except (InputError, EnvironmentProblem) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `localenv up | head -1`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        import psycopg  # here, not at the top: `localenv --help` needs no driver

        if not isinstance(exc, psycopg.Error):
            raise
        # The server said no (too many clients, a disk full, it stopped meanwhile): its words.
        print(f"error: the server refused: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing this command started is left running, and the data is kept; "
              "run it again", file=sys.stderr)
        return 130
