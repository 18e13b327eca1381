"""The shell the runbooks are written in: their variables, helper functions and the SQL they
send, in one place, because the rehearsal and the restore drill run the same text on the
embedded and Docker targets (conformance.runbooks.execute) that the on-call engineer runs
on the cluster."""

from __future__ import annotations

import shlex

from conformance.runbooks.facts import Facts

# psql as the bootstrap superuser inside the database container, over its local socket
# (POSTGRES_INITDB_ARGS: --auth-local=trust), SQL on stdin. The official image's contract has
# POSTGRES_USER, or POSTGRES_USER_FILE naming a file of the Secret: either works.
PSQL_AS_SUPERUSER = ('psql -X -q -A -t -v ON_ERROR_STOP=1 -U "${POSTGRES_USER:-$(cat "$POSTGRES_USER_FILE")}" '
                     '-d "$POSTGRES_DB" -f -')
DB_PSQL = "exec " + PSQL_AS_SUPERUSER

# Tables and every index entry checked for damage; --install-missing: amcheck is an extension
# that a database made by the init Job does not have yet (pg_amcheck refuses without it).
AMCHECK = ('exec pg_amcheck --install-missing --heapallindexed -U "${POSTGRES_USER:-$(cat "$POSTGRES_USER_FILE")}" '
           '-d "$POSTGRES_DB"')

# The restore Job's count of each table's rows in the dump, as db_rows prints a database's.
DUMP_ROWS_SED = "s/^rows in the dump: //p"

# The dump's file name, from the backup script's last line ("Backup completed: DIR/NAME (SIZE)").
DUMP_NAME_SED = r"s|^Backup completed: .*/\([^/ ]*\.dump\) .*|\1|p"


def rows_sql(schema: str) -> str:
    """Every table of the schema and its exact row count, one `schema.table|rows` line each,
    named as pg_dump names them (the restore Job counts a dump's COPY blocks the same way)."""
    literal = schema.replace("'", "''")
    return (
        "SELECT format('%I.%I', n.nspname, c.relname) || '|' ||\n"
        "       (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname),"
        " false, true, '')))[1]::text\n"
        "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
        f" WHERE n.nspname = '{literal}' AND c.relkind IN ('r', 'p')\n"
        " ORDER BY 1;\n"
    )


def sessions_sql(user: str) -> str:
    """How many sessions the app account has open, this one left out (in v1.0 the app account is
    the one asking): the writers are stopped when it is 0."""
    return (f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{user.replace(chr(39), chr(39) * 2)}' "
            "AND pid <> pg_backend_pid();\n")


def truncate_sql(schema: str) -> str:
    """Empty every table of the schema (the init Job's seed rows included), for a data-only
    restore that brings its own rows and sequence positions."""
    literal = schema.replace("'", "''")
    return ("DO $truncate$ BEGIN\n"
            "  EXECUTE (SELECT 'TRUNCATE ' || string_agg(format('%I.%I', schemaname, tablename), ', ')\n"
            f"             FROM pg_tables WHERE schemaname = '{literal}');\n"
            "END $truncate$;\n")


def data_only_restore_script(schema: str) -> str:
    """Run by bash in the database container, the archive on stdin: the schema's rows (the
    init Job's seed rows too) replaced by the archive's, in one transaction whose COMMIT is the
    stream's last line, so that an error or an archive cut short rolls it all back."""
    return ("set -euo pipefail\n"
            "{\n"
            "  printf 'BEGIN;\\n'\n"
            "  cat <<'SQL'\n" + truncate_sql(schema) + "SQL\n"
            "  pg_restore --data-only --disable-triggers --file=-\n"
            "  printf 'COMMIT;\\n'\n"
            "} | " + PSQL_AS_SUPERUSER + "\n")


def variables(f: Facts) -> list[tuple[str, str, str]]:
    """(name, value, comment) of the names a runbook uses, from the manifests of its major."""
    return [
        ("ns", f.namespace, "namespace"),
        ("statefulset", f.statefulset, ""),
        ("pod", f.pod, ""),
        ("container", f.container, "the database container"),
        ("image", f.image, f"what {f.manifests_dir}/ runs"),
        ("data_claim", f.data_claim, "the data disk's claim"),
        ("pgdata", f.pgdata, "PGDATA in the container"),
        ("schema_job", f.schema_job, ""),
        ("backup_cronjob", f.backup_cronjob, ""),
        ("restore_job", f.restore_job, ""),
        ("restore_request", f.restore_request, "the ConfigMap naming the dump to restore"),
        ("app_user", f.app_user, "the service's account (the writers)"),
    ]


FUNCTIONS = r'''fail() { echo "runbook: $*" >&2; return 1; }
# JOB SECONDS: wait until the Job completes (0) or fails (1, its log shown); kubectl wait
# --for=condition=complete would hang its whole timeout on a failed Job.
job_wait() {
  local deadline=$((SECONDS + $2)) conditions
  while :; do
    conditions=$(kubectl -n "$ns" get job "$1" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}') || return 1
    if printf '%s' "$conditions" | grep -qw Complete; then
      echo "job/$1 completed"; return 0
    fi
    if printf '%s' "$conditions" | grep -qw Failed; then
      kubectl -n "$ns" logs "job/$1" --tail=30 >&2 || true
      fail "job/$1 failed (its log above)"; return 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || { fail "job/$1 neither completed nor failed within $2 s"; return 1; }
    sleep 5
  done
}
# POD SECONDS: wait until a one-off pod succeeds (0) or fails (1), its log shown either way.
pod_wait() {
  local deadline=$((SECONDS + $2)) phase
  while :; do
    phase=$(kubectl -n "$ns" get pod "$1" -o jsonpath='{.status.phase}') || return 1
    if [ "$phase" = Succeeded ]; then
      kubectl -n "$ns" logs "$1" || true; return 0
    fi
    if [ "$phase" = Failed ]; then
      kubectl -n "$ns" logs "$1" >&2 || true
      fail "pod/$1 failed (its log above)"; return 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || { fail "pod/$1 did not finish within $2 s"; return 1; }
    sleep 5
  done
}
# SQL on stdin, run by psql as the bootstrap superuser in the database container.
db_psql() { kubectl -n "$ns" exec -i "$pod" -c "$container" -- sh -c "$db_psql_in_pod"; }
# Every table of the schema with its exact row count.
db_rows() { printf '%s' "$rows_sql" | db_psql; }
# SECONDS: wait until the app account has no session left (the writers are stopped).
writers_gone() {
  local deadline=$((SECONDS + $1)) n
  while :; do
    n=$(printf '%s' "$sessions_sql" | db_psql) || return 1
    [ "$n" = 0 ] && { echo "no session of $app_user is open"; return 0; }
    [ "$SECONDS" -lt "$deadline" ] || { fail "$n sessions of $app_user remain after $1 s: a writer still runs"; return 1; }
    sleep 5
  done
}
# SECONDS: wait until no Job of the backup CronJob runs.
backups_idle() {
  local deadline=$((SECONDS + $1)) active
  while :; do
    active=$(kubectl -n "$ns" get cronjob "$backup_cronjob" -o jsonpath='{.status.active}') || return 1
    [ -z "$active" ] && { echo "no backup Job runs"; return 0; }
    [ "$SECONDS" -lt "$deadline" ] || { fail "a backup Job still runs after $1 s"; return 1; }
    sleep 10
  done
}
# The cluster must run what this runbook was written for, else it stops before changing anything.
runs_image() {
  local found
  found=$(kubectl -n "$ns" get statefulset "$statefulset" \
    -o jsonpath="{.spec.template.spec.containers[?(@.name==\"$container\")].image}") || return 1
  [ "$found" = "$1" ] || { fail "statefulset/$statefulset runs '${found:-nothing}', this runbook is for $1"; return 1; }
}
# IMAGE: the StatefulSet runs another image than IMAGE. A failed or empty read is no answer:
# it fails too (retiring a claim on a guess could delete the only copy of the data).
runs_other_image() {
  local found
  found=$(kubectl -n "$ns" get statefulset "$statefulset" \
    -o jsonpath="{.spec.template.spec.containers[?(@.name==\"$container\")].image}") \
    || { fail "cannot read what statefulset/$statefulset runs"; return 1; }
  [ -n "$found" ] || { fail "statefulset/$statefulset has no container $container"; return 1; }
  [ "$found" != "$1" ] || { fail "statefulset/$statefulset still runs $1"; return 1; }
  echo "statefulset/$statefulset runs $found"
}
'''


def assignments(f: Facts) -> list[str]:
    lines = [f"{name}={shlex.quote(value)}" + (f"  # {comment}" if comment else "")
             for name, value, comment in variables(f)]
    lines.append(f"db_psql_in_pod={shlex.quote(DB_PSQL)}")
    lines.append(f"rows_sql={shlex.quote(rows_sql(f.schema))}")
    lines.append(f"sessions_sql={shlex.quote(sessions_sql(f.app_user))}")
    return lines
