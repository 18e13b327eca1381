"""Results of checks: each Passed, Failed, Error (the check itself could not run), Skipped, or
Warned (a change the gate lets through but users must know of, such as a restart)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    WARNED = "warned"


@dataclass(frozen=True)
class Finding:
    """One problem: where it is, what the plan (or our recorded decision) expects, what is there."""

    file: str
    obj: str
    path: str
    expected: str
    found: str
    line: int | None = None

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def describe(self) -> str:
        return f"expected {self.expected}, found {self.found}"


@dataclass(frozen=True)
class ChangeFinding(Finding):
    """What applying a change does (check --base): found is the change (base -> now), expected
    is its consequence, remedy what to do about it."""

    remedy: str = ""

    def describe(self) -> str:
        return f"{self.found}: {self.expected}" + (f"; remedy: {self.remedy}" if self.remedy else "")


class MissingObject(Exception):
    """A check needs an object the manifests do not have: its finding says so
    (GateContext.need raises it; static.wraps_missing turns it into the check's finding)."""

    def __init__(self, finding: Finding):
        super().__init__(finding.describe())
        self.finding = finding


@dataclass(frozen=True)
class Inconclusive(Finding):
    """What a check could not decide here (the machine's noise): reported as a warning, never
    a failure, and never a pass either: it says what was measured and why it does not decide."""

    def describe(self) -> str:
        return f"inconclusive: expected {self.expected}, found {self.found}"


@dataclass
class Result:
    check_id: str
    section: str
    title: str
    status: Status
    findings: list[Finding] = field(default_factory=list)
    message: str = ""
    checklist: tuple[str, ...] = ()
    scope: str = "static"

    def lines(self) -> list[str]:
        """One line per finding: file:line object field: check (plan section): expected, found."""
        if self.status in (Status.FAILED, Status.WARNED):
            warned = "warning: " if self.status is Status.WARNED else ""
            return [": ".join(part for part in (f.where(), " ".join(p for p in (f.obj, f.path) if p != "-"),
                                                f"{self.check_id} (plan {self.section})") if part)
                    + f": {warned}{f.describe()}" for f in self.findings]
        if self.status is Status.ERROR:
            return [f"{self.check_id} (plan {self.section}): error: {self.message}"]
        return []
