"""The power-cut drill: the server in a virtual machine (vm.py) under load, its power cut at a
random moment, the machine booted again on the same disk, the damage counted."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg

from conformance import timeouts, workload
from conformance.bench.configs import Config, apply
from conformance.drills import runner, verify, vm
from conformance.drills.load import Load
from conformance.drills.runner import POWER_CUT, Plan, Trial
from conformance.errors import EnvironmentProblem, one_line
from conformance.pg import ports
from conformance.targets.base import account
from conformance.targets.waiting import NotYet, wait_until

# What differs in the guest from the container: the socket in /tmp (no /var/run/postgresql),
# and no logging collector, so that the server's own words reach the console.
GUEST_SETTINGS = {"listen_addresses": "'*'", "port": "5432", "unix_socket_directories": "'/tmp'",
                  "logging_collector": "off"}


def _prepare(manifests, config: Config, work: Path, progress) -> tuple[Path, int, int, str]:
    """A data directory as the image's first start makes it, the init Job's work and the
    configuration in it; returns (the volume folder, its owner's uid, gid, PGDATA in the guest)."""
    from conformance import workload
    from conformance.live.runner import apply_schema
    from conformance.targets.native import NativeTarget

    with NativeTarget(manifests, workdir=work / "host", progress=progress,
                      pg_major=workload.image_major(manifests)) as host:
        apply_schema(host)
        apply(lambda: psycopg.connect(**host.conninfo("superuser", dbname="postgres"), autocommit=True), config)
        volume = host.volume_dir
        pgdata = Path(host.mapping.path(host.db.env["PGDATA"]))
    conf = workload.postgresql_conf(manifests)[1] or ""
    overrides = "".join(f"{k} = {v}\n" for k, v in GUEST_SETTINGS.items())
    (volume / "postgresql.conf").write_text(conf + "\n# the drill VM's own\n" + overrides, encoding="utf-8")
    owner = pgdata.stat()
    shutil.chown(volume / "postgresql.conf", owner.st_uid, owner.st_gid)
    return volume, owner.st_uid, owner.st_gid, f"{GUEST_VOLUME}/{pgdata.relative_to(volume)}"


GUEST_VOLUME = "/data"  # where the guest mounts the data disk (the claim's volume)


def guest_init_scripts(manifests) -> tuple[tuple[str, str], ...]:
    """The StatefulSet's init containers as guest shell scripts, read from the manifests: their
    command and literal env, the claim's mount path mapped to the guest's data disk (so PGDATA
    is /data/pgdata there), an emptyDir to a folder of its own."""
    import shlex

    from conformance import workload
    from conformance.targets.mapping import LocalMapping

    db = workload.database(manifests)
    claims = set(workload.claim_templates(db.owner))
    out = []
    for c in workload.init_containers(manifests, db.owner):
        paths, folders = {}, []
        for m in c.mounts():
            if m.volume in claims:
                paths[m.path] = Path(GUEST_VOLUME)
            elif "emptyDir" in m.source:
                paths[m.path] = Path(f"/tmp/{c.name}-{m.volume}")
                folders.append(str(paths[m.path]))
            else:
                raise EnvironmentProblem(f"{c.owner.file}: init container {c.name} mounts {m.volume!r}, which the "
                                         "drill VM cannot give it (it has the data claim and emptyDirs)")
        mapping = LocalMapping(port=int(GUEST_SETTINGS["port"]), bindir=Path("/pg/bin"), paths=paths)
        # Literal values only: nothing of a Secret goes into the (cached) initramfs.
        literal = {e.get("name") for e in c.spec.get("env") or [] if "value" in e}
        lines = [f"mkdir -p {shlex.quote(f)}" for f in folders]
        lines += [f"export {k}={shlex.quote(mapping.path(v))}" for k, v in c.env.items() if k in literal]
        lines.append("exec " + shlex.join(mapping.argv(c.command + c.args)))
        out.append((c.name, "\n".join(lines) + "\n"))
    return tuple(out)


def _conninfo(manifests, port: int, role: str = "superuser") -> dict:
    from conformance.plan import figure

    acct = account(manifests, role)
    return {"host": "127.0.0.1", "port": port, "user": acct.user, "password": acct.password,
            "dbname": figure("database").expected, "connect_timeout": 5}


class ServerStopped(EnvironmentProblem):
    """The server in the guest stopped by itself, in its own words: it did not come back."""


def _boot(machine: vm.Machine, manifests) -> float:
    """Boot and wait until the server answers a query; the seconds it took."""
    start = time.monotonic()
    machine.console.unlink(missing_ok=True)
    machine.boot()

    def answered():
        if not machine.alive():
            raise EnvironmentProblem(f"the drill VM stopped: {machine.log().strip()[-300:]}")
        exited = machine.server_exited()
        if exited:
            raise ServerStopped(f"the server stopped: {exited}")
        try:
            with psycopg.connect(**_conninfo(manifests, machine.port)) as conn:
                return conn.execute("SELECT 1").fetchone()[0] == 1
        except psycopg.OperationalError as exc:
            raise NotYet(str(exc).strip()[:120]) from None

    wait_until(answered, "the drill VM's server answering", timeouts.VM_BOOT, interval=0.5)
    return time.monotonic() - start


def _outcome(trial: Trial, clean_boot: float) -> str:
    if trial.failed:
        return f"not judged: {trial.failed}"
    if not trial.recovered:
        return f"did not come back: {'; '.join(trial.details)[:200]}"
    said = (f"{trial.lost} of {trial.acked} acknowledged commits lost, back in {trial.recovery_s:.1f} s (a clean "
            f"boot: {clean_boot:.1f} s)" + (f"; the init container removed {trial.lock_cleared}"
                                             if trial.lock_cleared else ""))
    return said + (", CORRUPT: " + "; ".join(trial.details)[:200] if trial.corrupt else "")


def power_cuts(manifests, config: Config, plan: Plan, rng, pg_amcheck, progress) -> list[Trial]:
    vmlinuz, modules = vm.kernel(progress)
    work = vm.scratch_dir()
    machine = None
    trials: list[Trial] = []
    try:
        volume, uid, gid, pgdata = _prepare(manifests, config, work, progress)
        initrd = vm.initramfs(vm.pg_directory(workload.image_major(manifests)), modules, uid, gid, progress,
                              guest_init_scripts(manifests), pgdata)
        pristine = vm.data_disk(volume, work / "pristine.img")
        disk = work / "data.img"
        shutil.copyfile(pristine, disk)
        machine = vm.Machine(vmlinuz, initrd, disk, ports.free_port(), work / "console.log")
        progress(f"{config.name}: booting the drill VM (TCG)")
        clean_boot = _boot(machine, manifests)
        for i in range(plan.cuts):
            trial = Trial(config.name, POWER_CUT, i + 1)
            load = Load(_conninfo(manifests, machine.port, "app"), trial=f"p{config.name[0]}{i}")
            load.start()
            time.sleep(rng.uniform(*plan.load_seconds))  # a random moment of the load
            fault_at = time.monotonic()
            machine.cut()
            acked = load.stop()
            trial.clean_start_s = clean_boot
            try:
                trial.recovery_s = _boot(machine, manifests)  # from power on, like clean_boot
                trial.lock_cleared = runner.cleared(machine.log())
            except ServerStopped as exc:  # needs a person: a pod would crash-loop the same way
                trial.recovered = False
                trial.details.append(one_line(exc, 300))
                # The server refused its own data (no valid checkpoint, a damaged page...): that
                # is damage, not only down time; a restore or pg_resetwal is what brings it back.
                trial.corrupt = "PANIC:" in str(exc)
            except EnvironmentProblem as exc:
                # The VM died or booted slower than its timeout (under emulation on a busy machine,
                # while the startupProbe allows longer): the harness failed, not the server. The
                # trial is not judged (the run fails), and the next starts from an intact disk.
                trial.failed = one_line(exc, 300)
            if trial.recovered and not trial.failed:
                damage = verify.inspect(_conninfo(manifests, machine.port), acked, fault_at, pg_amcheck)
                trial.acked, trial.lost, trial.lost_ms = len(acked), len(damage.lost), damage.lost_ms
                trial.corrupt = damage.corrupt
                trial.details += ([damage.error] if damage.error else []) + damage.amcheck + (
                    [f"{len(damage.wrong_rows)} rows differ from what was written"] if damage.wrong_rows else [])
            else:
                trial.acked = len(acked)
            progress(f"{config.name}: power cut {i + 1}/{plan.cuts}: {_outcome(trial, clean_boot)}")
            trials.append(trial)
            if trial.failed or trial.corrupt or not trial.recovered:
                # The next trial starts from an intact disk, as after a restore.
                machine.cut()
                shutil.copyfile(pristine, disk)
                clean_boot = _boot(machine, manifests)
    finally:
        if machine is not None:
            machine.cut()
        shutil.rmtree(work, ignore_errors=True)
    return trials
