"""`localenv upgrade --to N`: carry the laptop database to another PostgreSQL major with
pg_upgrade, rehearsing what the dev cluster will need after 14's end of life.

The order, and what each failure leaves:
  1. a backup with the CronJob's script (kept in backups/before-upgrade/);
  2. rows counted and checksummed per table, then the server stopped;
  3. the old data directory moved aside (kept until `upgrade --delete-old`), a new one made
     as the image's first start makes it, `pg_upgrade --check`, then `pg_upgrade` (copy mode:
     the old directory is never written);
  4. the new server started, verified as every `up` is, rows compared, the catalog-reading
     live checks run on it, statistics rebuilt.
A failure in 3 or 4 removes the new directory, moves the old one back and starts the old
server: the user is where they were, and told so in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import EnvironmentProblem, InputError
from conformance.live.context import LiveContext
from conformance.live.runner import run_checks
from conformance.pg import libpq
from conformance.pg import ports
from conformance.pg.digest import schema_digests
from conformance.pg.server import Server
from conformance.results import Status
from localenv.state import State

# The live checks that only read the catalog and settings: they judge an upgraded database
# without touching the user's data (no probes stopping the server, no re-run of the init).
VERIFYING_CHECKS = {"live-2.2-server", "live-4-settings", "live-14.2-tables", "live-14.2-indexes", "live-14.2-views",
                    "live-14.2-columns", "live-14.2-constraints", "live-14.2-comments", "live-9.2-privilege-table",
                    "live-9.2-role-attributes", "live-9.2-admin-owns"}


@dataclass(frozen=True)
class Upgraded:
    from_major: int
    to_major: int
    backup: Path
    old_data: Path
    tables: dict            # table -> rows, the same before and after
    checks_passed: int


def _digest(target) -> dict:
    return schema_digests(target.conninfo("superuser"))


def _drop_clones(backend) -> None:
    """Clones and templates are disposable, and pg_upgrade refuses a database that takes no
    connections (a template): they go before the upgrade; the next clone builds a new template."""
    from localenv.clones import Clones

    clones = Clones(backend.running_target(), backend.progress)
    dropped = clones.drop_all() + clones.drop_templates()
    if dropped:
        backend.progress(f"dropped {len(dropped)} clones and templates first (made again when asked)")


def upgrade(backend, to: int) -> Upgraded:
    state = State.load(backend.state_file)
    old = backend.opened()
    if not old.server.initialized:
        raise InputError("there is no database to upgrade yet: localenv up makes one")
    from_major = old.server.data_major()
    if from_major == to:
        raise InputError(f"the database is PostgreSQL {to} already")
    if to < from_major:
        raise InputError(f"pg_upgrade goes forward only: this database is PostgreSQL {from_major}")
    old_data = old.server.datadir.with_name(f"{old.server.datadir.name}.pg{from_major}")
    if old_data.exists():
        raise EnvironmentProblem(f"{old_data} is there from an earlier upgrade; `localenv upgrade --delete-old` first")

    backend.up()  # running, and verified, for the backup and the counts
    backup = backend.backup(backend.settings.backups / "before-upgrade")
    backend.progress(f"saved the data first: {backup}")
    before = _digest(backend.running_target())
    _drop_clones(backend)
    backend.progress(f"stopping PostgreSQL {from_major}")
    backend.down()

    datadir = old.server.datadir
    os.rename(datadir, old_data)
    try:
        old_server = Server(old.binaries, old_data, old.run_dir, old.server.run_as)
        new = backend.opened(pg_major=to)
        new.initialize(_same_checksums(old_server, new.binaries.major))
        superuser = new.db.value("POSTGRES_USER")
        pair = (ports.free_port(), ports.free_port())
        backend.progress(f"pg_upgrade --check {from_major} -> {to}")
        new.server.upgrade_from(old_server, superuser, check=True, ports=pair)
        backend.progress(f"pg_upgrade {from_major} -> {to} (copy mode: the old directory is left as it was)")
        new.server.upgrade_from(old_server, superuser, check=False, ports=pair)
        state.pg_major, state.upgraded_from = to, str(old_data)
        state.save(backend.state_file)
        backend.up()
        target = backend.running_target()
        after = _digest(target)
        if after != before:
            differing = sorted(t for t in before if before[t] != after.get(t))
            raise EnvironmentProblem(f"rows differ after pg_upgrade in {', '.join(differing)}")
        results = run_checks(LiveContext(target, backend.manifests, allow_writes=False), only=VERIFYING_CHECKS)
        bad = unverified(results)
        if bad:
            raise EnvironmentProblem(f"the upgraded database is not verified ({len(bad)} of {len(VERIFYING_CHECKS)} "
                                     f"checks): {bad[0]}")
        _analyze(target)
        os.sync()
    except BaseException as exc:
        _roll_back(backend, datadir, old_data, state, from_major)
        if isinstance(exc, (EnvironmentProblem, InputError)):
            raise EnvironmentProblem(f"upgrade to PostgreSQL {to} failed, and was undone: PostgreSQL {from_major} "
                                     f"runs again with its data as it was ({exc})") from None
        raise
    return Upgraded(from_major, to, backup, old_data, {t: v[0] for t, v in after.items()},
                    sum(r.status is Status.PASSED for r in results))


def unverified(results) -> list[str]:
    """What keeps the upgrade from counting as verified: each expected check must have run and
    passed. A skip, a warning or a check that did not run verifies nothing."""
    ran = {r.check_id: r for r in results}
    out = [f"{cid} did not run" for cid in sorted(VERIFYING_CHECKS - set(ran))]
    for cid in sorted(VERIFYING_CHECKS & set(ran)):
        r = ran[cid]
        if r.status is not Status.PASSED:
            out.append(f"{cid} {r.status.value}: " + ("; ".join(r.lines()) or r.message))
    return out


def _same_checksums(old: Server, to: int) -> tuple[str, ...]:
    """pg_upgrade needs both clusters alike in data checksums. initdb turns them on by default
    from PostgreSQL 18 (the official image's too); a cluster made by 14 has them off unless
    asked for. The new cluster follows the old one."""
    proc = subprocess.run([old.binaries.tool("pg_controldata"), str(old.datadir)], capture_output=True, text=True,
                          env={"LC_ALL": "C"}, check=False)
    versions = [line.split(":", 1)[1].strip() for line in proc.stdout.splitlines()
                if line.startswith("Data page checksum version:")]
    if proc.returncode != 0 or len(versions) != 1:
        # Unread is not "the same": a guess here makes pg_upgrade refuse, or worse, later.
        last = (proc.stderr or proc.stdout).strip().splitlines()
        raise EnvironmentProblem(f"pg_controldata could not read {old.datadir}'s data checksum setting: "
                                 f"{last[-1] if last else f'exit {proc.returncode}'}")
    enabled = versions[0] != "0"
    if enabled:
        return ("--data-checksums",) if to < 18 else ()
    return ("--no-data-checksums",) if to >= 18 else ()


def _roll_back(backend, datadir: Path, old_data: Path, state: State, from_major: int) -> None:
    try:
        backend.down()
    except (EnvironmentProblem, OSError):
        pass
    report = datadir / "pg_upgrade_output.d"
    if report.is_dir():  # pg_upgrade's lists of what blocked it: kept for the user
        kept = backend.workdir / "pg_upgrade-failed"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.move(str(report), str(kept))
        backend.progress(f"pg_upgrade's report is kept in {kept}")
    if datadir.exists():
        shutil.rmtree(datadir)
    os.rename(old_data, datadir)
    state.pg_major, state.upgraded_from = from_major, ""
    state.save(backend.state_file)
    backend.progress(f"undone: PostgreSQL {from_major}'s data directory is back in place; starting it")
    backend.up()


def _analyze(target) -> None:
    """pg_upgrade carries no planner statistics; rebuild them as it recommends."""
    info = target.conninfo("superuser")
    env = {**os.environ, **libpq.env(info)}
    proc = subprocess.run([target.binaries.tool("vacuumdb"), "--all", "--analyze-only", "--quiet"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()
        raise EnvironmentProblem(f"vacuumdb --analyze-only failed: {last[-1] if last else f'exit {proc.returncode}'}")


def delete_old(backend) -> Path | None:
    """Remove the previous major's data directory that an upgrade kept; its path, or None."""
    state = State.load(backend.state_file)
    if not state.upgraded_from:
        return None
    old = Path(state.upgraded_from)
    shutil.rmtree(old, ignore_errors=True)
    state.upgraded_from = ""
    state.save(backend.state_file)
    return old
