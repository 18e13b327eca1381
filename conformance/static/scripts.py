"""The Job's and the CronJob's scripts: the failure modes the plan's versions had."""

from __future__ import annotations

import re
import shlex

from conformance import workload
from conformance.plan import figure
from conformance.registry import static
from conformance.static import wraps_missing


# Values of synchronous_commit that wait for the commit's WAL to be written locally.
_DURABLE_COMMIT = ("on", "local", "remote_write", "remote_apply", "true", "yes", "1")


def _script(c: workload.Container) -> str:
    """The command and args as one text, without shell comment lines (they run nothing)."""
    text = "\n".join(c.command + c.args)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _psql_calls(script: str) -> list[str]:
    """Each psql command line, with its backslash-continued lines."""
    calls = []
    for match in re.finditer(r"(?m)^\s*psql\b", script):
        end = match.start()
        while True:
            newline = script.find("\n", end)
            if newline < 0:
                end = len(script)
                break
            end = newline + 1
            if not script[:newline].rstrip(" ").endswith("\\"):
                break
        calls.append(script[match.start():end])
    return calls


def _errexit(ctx, c, script):
    path = c.path + ("command",)
    if not re.search(r"set -[a-z]*e[a-z]*(\s|$)", script) or "pipefail" not in script:
        yield ctx.finding(c.owner, path, "set -euo pipefail (a failed command fails the script)",
                          "no errexit/pipefail")


@static("plan-6.1-schema-init-job", "6.1", "the init Job fails on SQL errors, waits a bounded time, can be retried and re-applied",
        checklist=("14.1-schema-job",))
@wraps_missing
def schema_init_job(ctx):
    job = ctx.need("Job", "schema-job")
    c = workload.schema_init(ctx.manifests)
    script = _script(c)
    yield from _errexit(ctx, c, script)
    calls = _psql_calls(script)
    if not calls:
        yield ctx.finding(job, c.path + ("command",), "a psql call applying the schema", "none")
    for call in calls:
        if not re.search(r"ON_ERROR_STOP=(1|on|true)\b", call):
            yield ctx.finding(job, c.path + ("command",), "psql -v ON_ERROR_STOP=1 (else SQL errors exit 0)",
                              call.splitlines()[0].strip())
    restart = job.get(("spec", "template", "spec", "restartPolicy"))
    if restart != figure("schema-job-restart").expected:
        yield ctx.finding(job, ("spec", "template", "spec", "restartPolicy"), figure("schema-job-restart").expected, restart)
    for field, why in (("backoffLimit", "retries counted"), ("activeDeadlineSeconds", "a bound on the whole Job"),
                       ("ttlSecondsAfterFinished", "the finished Job removed, so a later apply can recreate it")):
        if not isinstance(job.get(("spec", field)), int):
            yield ctx.finding(job, ("spec", field), f"a number ({why})", job.get(("spec", field)))
    if "until" in script and "deadline" not in script and "timeout" not in script:
        yield ctx.finding(job, c.path + ("command",), "a bounded wait for the server", "an unbounded until-loop")
    mount = c.mount_of_configmap(figure("schema-configmap").expected)
    if mount is None or mount.path != figure("schema-mount").expected:
        yield ctx.finding(job, c.path + ("volumeMounts",), f"{figure('schema-configmap').expected} at "
                          f"{figure('schema-mount').expected}", mount.path if mount else "not mounted")
    if c.env.get("SQL_DIR") != figure("schema-mount").expected:
        yield ctx.finding(job, c.path + ("env",), f"SQL_DIR={figure('schema-mount').expected}", c.env.get("SQL_DIR"))


def _session_setting(pgoptions: str, name: str) -> str | None:
    """The value PGOPTIONS gives a setting (`-c name=value`, `-cname=value`, `--name=value`)."""
    try:
        words = shlex.split(pgoptions)
    except ValueError:
        return None
    value = None
    for i, word in enumerate(words):
        option = None
        if word == "-c" and i + 1 < len(words):
            option = words[i + 1]
        elif word.startswith("-c"):
            option = word[2:]
        elif word.startswith("--"):
            key, sep, val = word[2:].partition("=")
            option = key.replace("-", "_") + sep + val
        if option and "=" in option:
            key, _, val = option.partition("=")
            if key.strip().lower() == name:
                value = val.strip().lower()  # the last one wins, as in the server
    return value


@static("plan-6.1-schema-init-durable", "6.1",
        "the init Job's session commits durably, whatever plan 12.1 sets for the server",
        checklist=("14.1-schema-job",))
@wraps_missing
def schema_init_durable(ctx):
    job = ctx.need("Job", "schema-job")
    c = workload.schema_init(ctx.manifests)
    expected = figure("schema-job-commit").expected
    env_list = c.spec.get("env") or []
    index = next((i for i, e in enumerate(env_list) if e.get("name") == "PGOPTIONS"), None)
    path = c.path + (("env", index, "value") if index is not None else ("env",))
    found = _session_setting(c.env.get("PGOPTIONS", ""), "synchronous_commit")
    if found not in _DURABLE_COMMIT:
        if found:
            shown = f"synchronous_commit={found}"
        elif "PGOPTIONS" in c.env:
            shown = f"PGOPTIONS without synchronous_commit: {c.env['PGOPTIONS']!r}"
        else:
            shown = "no PGOPTIONS (the server's synchronous_commit=off applies)"
        yield ctx.finding(job, path, f"PGOPTIONS=-c synchronous_commit={expected} (a server killed after the "
                                     "Job completed must keep the accounts and schema)", shown)


@static("plan-7.1-backup-script", "7.1", "the backup fails loudly, keeps old dumps on failure, verifies before pruning",
        checklist=("14.3-backup",))
def backup_script(ctx):
    c = workload.backup(ctx.manifests)
    script = _script(c)
    path = c.path + ("command",)
    yield from _errexit(ctx, c, script)
    dump = script.find(figure("backup-method").expected)
    move = max(script.find("mv "), script.find("ln "))  # renamed, or linked (never over a dump)
    prune = script.find("-delete")
    if dump < 0:
        yield ctx.finding(c.owner, path, "pg_dump", "no pg_dump call")
    if "pg_restore" not in script:
        yield ctx.finding(c.owner, path, "the dump read back (pg_restore) before it counts", "no verification")
    if move < 0 or not (dump < move):
        yield ctx.finding(c.owner, path, "dump to a temporary file, then move (mv or ln) into place",
                          "no rename after the dump")
    if prune >= 0 and move >= 0 and prune < move:
        yield ctx.finding(c.owner, path, "old dumps pruned only after the new one is in place", "pruning before the rename")
    if re.search(r"-mtime\s+\+", script):
        yield ctx.finding(c.owner, path, "retention by minutes (-mmin); find -mtime +N keeps N+1 days",
                          re.search(r"-mtime\s+\+\S+", script).group(0))


@static("plan-7.1-backup-retention", "7.1", "backups kept for exactly 7 days", checklist=("14.3-backup",))
def backup_retention(ctx):
    c = workload.backup(ctx.manifests)
    expected = figure("backup-retention-days").expected
    if c.env.get("RETENTION_DAYS") != str(expected):
        yield ctx.finding(c.owner, c.path + ("env",), f"RETENTION_DAYS={expected}", f"RETENTION_DAYS={c.env.get('RETENTION_DAYS')}")
    if "RETENTION_DAYS" not in _script(c):
        yield ctx.finding(c.owner, c.path + ("command",), "pruning by $RETENTION_DAYS", "a retention the env does not set")


@static("plan-9.1-role-separation", "9.1", "Jobs connect as the least account that can do their work")
def role_separation(ctx):
    backup = workload.backup(ctx.manifests)
    user = backup.value("PGUSER")  # PGUSER, or the Secret file PGUSER_FILE names
    if user in (figure("account-app").expected, figure("account-readonly").expected):
        yield ctx.finding(backup.owner, backup.path + ("env",), "the admin (owner of every object) for pg_dump",
                          f"PGUSER={user}")
    db = workload.database(ctx.manifests)
    if user is None or user == db.value("POSTGRES_USER"):
        yield ctx.finding(backup.owner, backup.path + ("env",), "not the bootstrap superuser",
                          f"PGUSER={user}" if user else "no PGUSER (libpq would use the OS user)")
