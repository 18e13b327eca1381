"""A runbook printed two ways from the same steps: a bash script that runs it (stopping at the
first failure, resumable from any step), and markdown to read and follow by hand."""

from __future__ import annotations

import shlex
import textwrap

from conformance.runbooks import shell
from conformance.runbooks.model import Runbook

WRITERS_HINT = "the workload of the Product-Change service, e.g. WRITERS=deployment/product-change (none: not deployed)"


def _needs_writers(book: Runbook) -> bool:
    return any(s.action == "stop-writers" for s in book.steps)


def prelude(book: Runbook) -> list[str]:
    """Variables and helper functions, as a shell defines them before the first step."""
    lines = shell.assignments(book.facts)
    for name, value, comment in book.extra_variables:
        lines.append(f"{name}={shlex.quote(value)}" + (f"  # {comment}" if comment else ""))
    lines.append(f'state="${{RUNBOOK_STATE:-{book.state_dir}}}"  # what one step leaves for the next')
    if _needs_writers(book):
        lines.append(f'writers="${{WRITERS:?set WRITERS to {WRITERS_HINT}}}"')
    return lines + shell.FUNCTIONS.rstrip("\n").splitlines()


def script(book: Runbook) -> str:
    n = len(book.steps)
    head = [
        "#!/usr/bin/env bash",
        f"# {book.title}",
        f"# Printed by `{book.command}` from {book.facts.manifests_dir}/: print it again rather than edit it.",
        *(f"# {line}" for line in textwrap.wrap(book.intro, 96)),
        "#",
        "# Run from the repository's root: bash THIS_FILE [--yes] [--from STEP]",
        "# It stops at the first failure and says which step to resume from; what a step leaves for",
        "# the next is kept in $state. --yes answers the confirmations.",
    ]
    if _needs_writers(book):
        head.append(f"# WRITERS: {WRITERS_HINT}.")
    body = [
        "# shellcheck disable=SC2016,SC2034  # in-pod scripts are single-quoted on purpose; not every name is used",
        "set -euo pipefail",
        'yes="" from=1',
        "while [ $# -gt 0 ]; do",
        '  if [ "$1" = --yes ]; then yes=1',
        '  elif [ "$1" = --from ] && [ $# -gt 1 ]; then from="$2"; shift',
        '  else echo "usage: bash $0 [--yes] [--from STEP]" >&2; exit 2',
        "  fi",
        "  shift",
        "done",
        *prelude(book),
        'confirm() { [ -n "$yes" ] || { read -r -p "$1? type yes: " answer < /dev/tty && [ "$answer" = yes ]; } '
        '|| fail "not confirmed: stopped before the step"; }',
        "current=0",
        f"trap 'echo \"runbook: step $current of {n} failed; fix the cause, then: bash $0 --from $current\" >&2' ERR",
    ]
    for i, step in enumerate(book.steps, 1):
        body.append("")
        body.append(f'if [ "$from" -le {i} ]; then')
        body.append(f"current={i}")
        body.append(f"echo {shlex.quote(f'== {i}/{n} {step.title}')}")
        if step.confirm:
            body.append(f"confirm {shlex.quote(step.confirm)}")
        body.extend(step.commands)  # not indented: a heredoc's end marker must start its line
        body.append("fi")
    body += ["", f"echo {shlex.quote(f'== {book.title}: done')}"]
    return "\n".join(head + body) + "\n"


def markdown(book: Runbook, level: int = 1) -> str:
    h = "#" * level
    out = [f"{h} {book.title}", "", book.intro, "",
           "Print it as a script and run it from the repository's root; it stops at the first failure and says "
           "from which step to resume:", "",
           f"    {book.command} > runbook.sh",
           f"    {'WRITERS=deployment/<the service> ' if _needs_writers(book) else ''}bash runbook.sh", "",
           "Or follow it by hand in a bash shell: the first block, then each step's block in turn, stopping at "
           "the first command that fails.", "",
           "```bash", *prelude(book), "```", ""]
    if book.downtime:
        first, last = book.downtime
        out += [f"The database is unavailable to the service from step {first + 1} to step {last + 1}.", ""]
    for i, step in enumerate(book.steps, 1):
        out += [f"{h}# {i}. {step.title}", ""]
        if step.why:
            out += [step.why, ""]
        if step.confirm:
            out += [f"**Before you go on:** {step.confirm}.", ""]
        out += ["```bash", *step.commands, "```", ""]
    if book.after:
        out += [f"{h}# Afterwards", "", book.after, ""]
    return "\n".join(out)
