"""The pod comes back by itself after a node crash (plan 1.2's 95%): before the server starts, an
init container of the StatefulSet clears a stale postmaster.pid. After a power cut the file
can be empty (most cuts with plan 12.1's fsync=off), or name a PID that another process holds in
the new container, and PostgreSQL then refuses to start until a person deletes it
(docs/deviations.md).

The check holds what makes that step work and keeps it safe: it runs the database's own image
as the database's user, on the data claim at the database's mount and the same PGDATA (so the
lock it reads is the server's), and it removes postmaster.pid and nothing else."""

from __future__ import annotations

import re

from conformance import workload
from conformance.registry import static
from conformance.static import wraps_missing
from conformance.static.security import effective

LOCK = "postmaster.pid"


def _script(c: workload.Container) -> str:
    return "\n".join(c.command + c.args)


def _removals(script: str, pgdata: str) -> tuple[bool, list[str]]:
    """(whether an rm removes PGDATA's lock, the operands of every removal that is not it). An
    operand is a literal path or a variable the script sets; the lock is $PGDATA/postmaster.pid
    (or PGDATA's value spelled out). rm and unlink remove it; mv and find -delete remove files
    too, never counted as the lock's removal."""
    assigned = {m.group(1): m.group(2).strip("\"'") for m in re.finditer(r"^\s*(\w+)=(\S+)", script, re.M)}
    lock_paths = {f"$PGDATA/{LOCK}", f"${{PGDATA}}/{LOCK}", f"{pgdata}/{LOCK}"}
    removes_lock, others = False, []
    starts = r"(?:^|[;&|({]|\bthen|\bdo|\belse)\s*"
    # rm and unlink remove their operands: the lock, or something else.
    for m in re.finditer(starts + r"(rm|unlink)\s+([^\n;&|)}]*)", script, re.M):
        for word in m.group(2).split():
            if word.startswith("-"):
                continue
            bare = word.strip("\"'")
            variable = re.fullmatch(r"\$\{?(\w+)\}?", bare)
            value = assigned.get(variable.group(1), "") if variable else bare
            if value in lock_paths:
                removes_lock = True
            else:
                others.append(f"{m.group(1)} {word}")
    # mv and find -delete take files away too, and never only the lock.
    for m in re.finditer(starts + r"(mv\s+[^\n;&|)}]*|find\s+[^\n;&|)}]*-delete)", script, re.M):
        others.append(m.group(1).strip())
    return removes_lock, others


@static("plan-1.2-stale-lock-cleared", "1.2", "a stale postmaster.pid is cleared before the server starts (an init "
        "container on the data claim, as the database), so the pod comes back by itself after a node crash")
@wraps_missing
def stale_lock_cleared(ctx):
    db = workload.database(ctx.manifests)
    sts = db.owner
    inits = workload.init_containers(ctx.manifests, sts)
    step = next((c for c in inits if LOCK in _script(c)), None)
    if step is None:
        yield ctx.finding(sts, workload.POD_SPEC[sts.kind] + ("initContainers",),
                          f"an init container that removes a stale {LOCK} (after a node crash PostgreSQL refuses an "
                          "empty one, or one naming a live PID, and the pod crash-loops until a person deletes it)",
                          [c.name for c in inits] or None)
        return
    if step.image != db.image:
        yield ctx.finding(sts, step.path + ("image",), f"{db.image} (the database's image: its user, its tools, and "
                          "an upgrade moves both)", step.image)
    db_data = next((m for m in db.mounts() if m.path and db.env.get("PGDATA", "").startswith(m.path)), None)
    mount = next((m for m in step.mounts() if db_data is not None and m.volume == db_data.volume), None)
    if db_data is not None and (mount is None or mount.path != db_data.path):
        yield ctx.finding(sts, step.path + ("volumeMounts",), f"{db_data.volume} at {db_data.path} (where the "
                          f"database has its data: another path holds another {LOCK}, or none)",
                          f"{mount.volume} at {mount.path}" if mount else [f"{m.volume} at {m.path}" for m in step.mounts()])
    if step.env.get("PGDATA") != db.env.get("PGDATA"):
        yield ctx.finding(sts, step.path + ("env",), f"PGDATA={db.env.get('PGDATA')} (the database's)",
                          f"PGDATA={step.env.get('PGDATA')}" if "PGDATA" in step.env else "no PGDATA")
    pod = workload.pod_spec(sts)
    for field in ("runAsUser", "runAsGroup"):
        want, got = effective(pod, db.spec, field), effective(pod, step.spec, field)
        if got != want:
            yield ctx.finding(sts, step.path + ("securityContext", field), f"{want} (the database's: the lock is "
                              "its file, and a root step could change what it must not)", got)
    removes_lock, others = _removals(_script(step), db.env.get("PGDATA", ""))
    if not removes_lock:
        yield ctx.finding(sts, step.path + ("command",), f"rm of $PGDATA/{LOCK} (the lock the server reads; a "
                          "step that names it and removes nothing, or another file, clears nothing)",
                          f"no rm of $PGDATA/{LOCK}")
    if others:
        yield ctx.finding(sts, step.path + ("command",), f"rm of {LOCK} only (nothing else in PGDATA is the init "
                          "container's to touch)", "; ".join(others))
