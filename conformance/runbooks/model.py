"""A runbook as data: steps of shell commands, each with what the rehearsal does in its place
(conformance.runbooks.execute), so that one text is printed for the cluster and run here."""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.runbooks.facts import Facts

# The runbooks `python -m conformance runbook` prints (books.build makes each).
BOOKS = ("apply", "restore", "upgrade", "rollback", "retire-claim", "node-crash", "snapshot", "from-v1")


@dataclass(frozen=True)
class Step:
    title: str
    why: str
    commands: tuple[str, ...]
    # What the rehearsal does for this step on a target (execute.ACTIONS), with its arguments;
    # "cluster" for a step only a cluster has (scaling the service, suspending the CronJob).
    action: str
    args: tuple = ()
    # Asked before the step runs (the script waits for "yes" unless given --yes).
    confirm: str | None = None
    # What of this step costs time on the cluster only (named in the rehearsal's report).
    cluster_only: str | None = None


@dataclass
class Runbook:
    name: str  # the CLI's name: restore, upgrade, ...
    title: str
    intro: str
    facts: Facts  # the manifests the runbook ends on (the new major for an upgrade)
    steps: list[Step]
    command: str  # how to print it again: python -m conformance runbook ...
    extra_variables: list[tuple[str, str, str]] = field(default_factory=list)
    # Steps from the first that stops the writers to the one that starts them again.
    downtime: tuple[int, int] | None = None
    after: str = ""  # what to do once it is through (markdown)

    @property
    def state_dir(self) -> str:
        return f"runbook-{self.name}-pg{self.facts.major}"
