"""Checks register here with a stable id that carries their plan section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from conformance.results import Finding, Inconclusive, Result, Status


class Skip(Exception):
    """Raised by a check that cannot judge here; the reason is reported."""


@dataclass(frozen=True)
class Check:
    id: str
    section: str
    title: str
    func: Callable[..., Iterable[Finding]]
    checklist: tuple[str, ...]
    scope: str  # "static" or "live"

    def run(self, ctx) -> Result:
        try:
            findings = list(self.func(ctx) or [])
        except Skip as exc:
            return Result(self.id, self.section, self.title, Status.SKIPPED, message=str(exc),
                          checklist=self.checklist, scope=self.scope)
        except Exception as exc:  # a broken check must show as an error, not pass
            return Result(self.id, self.section, self.title, Status.ERROR,
                          message=f"{type(exc).__name__}: {exc}", checklist=self.checklist, scope=self.scope)
        # Inconclusive findings alone warn; any other finding fails.
        failed = [f for f in findings if not isinstance(f, Inconclusive)]
        status = Status.FAILED if failed else Status.WARNED if findings else Status.PASSED
        return Result(self.id, self.section, self.title, status, findings,
                      checklist=self.checklist, scope=self.scope)


STATIC: dict[str, Check] = {}
LIVE: dict[str, Check] = {}


def _register(table: dict, scope: str, check_id: str, section: str, title: str, checklist=()):
    def decorate(func):
        if check_id in table:
            raise ValueError(f"duplicate check id {check_id}")
        table[check_id] = Check(check_id, section, title, func, tuple(checklist), scope)
        return func
    return decorate


def static(check_id: str, section: str, title: str, checklist=()):
    return _register(STATIC, "static", check_id, section, title, checklist)


def live(check_id: str, section: str, title: str, checklist=()):
    return _register(LIVE, "live", check_id, section, title, checklist)


def add_static(check: Check) -> None:
    if check.id in STATIC:
        raise ValueError(f"duplicate check id {check.id}")
    STATIC[check.id] = check
