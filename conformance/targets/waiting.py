"""Bounded waits that poll a real condition (a query answered, a status field), never a log
line or a fixed sleep. On timeout, one message: what was awaited, for how long, and the last
answer seen."""

from __future__ import annotations

from typing import Callable, TypeVar

from tenacity import RetryError, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from conformance.errors import EnvironmentProblem
from conformance.timeouts import POLL_INTERVAL

T = TypeVar("T")


class NotYet(Exception):
    """Raised by a probe that wants to be polled again; its message is the last state seen."""


def wait_until(probe: Callable[[], T], what: str, timeout: float, interval: float = POLL_INTERVAL,
               retry_on: tuple[type[BaseException], ...] = (NotYet,)) -> T:
    """Call probe until it returns a truthy value without raising one of retry_on."""
    last: list[str] = ["no answer yet"]

    def remember(state) -> None:
        outcome = state.outcome
        if outcome.failed:
            last[0] = f"{type(outcome.exception()).__name__}: {outcome.exception()}"
        else:
            last[0] = f"got {outcome.result()!r}"

    retrying = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(interval),
                        retry=retry_if_exception_type(retry_on) | retry_if_result(lambda value: not value),
                        after=remember, reraise=False)
    try:
        return retrying(probe)
    except RetryError:
        raise EnvironmentProblem(f"{what}: not after {timeout:g} s (last: {last[0]})") from None
