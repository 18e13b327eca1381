"""Plan 1.2's availability (95%: 36.5 hours down a month) in the drills' terms: when the pod
would be Ready after a fault (the server answering, then the kubelet's next readiness probe,
its timing read from the manifests), and what a number of node crashes a month costs.

What is measured and what is assumed are kept apart: the seconds until the server answers are
the drills'; the node's own return and a person's response are assumptions, stated here, with
why, and printed beside every figure that uses them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from conformance import workload
from conformance.plan import AVAILABILITY

MONTH_HOURS = 730  # 8,760 / 12
BUDGET_HOURS = (1 - AVAILABILITY) * MONTH_HOURS

# Assumptions (not measured here):
# - A crashed node is back (rebooted, or replaced and the disk attached again) in 5 minutes:
#   AKS restarts a failed VM and Kubernetes marks the node NotReady after 40 s; the disk, being
#   ReadWriteOnce, follows the node. A dead VM that has to be replaced takes longer.
NODE_BACK_S = 300
# - When the server does not come back by itself, a person must act. The dev cluster has no
#   on-call: someone notices the CrashLoopBackOff, reads the log and deletes the lock file.
#   4 hours is a working day's response; overnight or at a weekend it is far more.
PERSON_S = 4 * 3600
CRASHES_A_MONTH = (1, 4, 10)


@dataclass(frozen=True)
class Readiness:
    """The database container's readinessProbe, with Kubernetes' defaults where unset."""
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success: int = 1

    def ready_after(self, answering_s: float) -> float:
        """Seconds from the container's start until the pod is Ready, when the server answers
        after answering_s: the first probe at initialDelaySeconds, then one every periodSeconds;
        Ready at the first that finds it answering (successThreshold in a row)."""
        first = self.initial_delay
        waits = max(0.0, math.ceil((answering_s - first) / self.period)) if answering_s > first else 0.0
        return first + (waits + self.success - 1) * self.period


def readiness(manifests) -> Readiness:
    probe = workload.database(manifests).spec.get("readinessProbe") or {}
    return Readiness(initial_delay=float(probe.get("initialDelaySeconds", 0)),
                     period=float(probe.get("periodSeconds", 10)), timeout=float(probe.get("timeoutSeconds", 1)),
                     success=int(probe.get("successThreshold", 1)))


@dataclass(frozen=True)
class Cost:
    crashes: int
    hours: float          # down a month, expected
    share: float          # of plan 1.2's budget

    def text(self) -> str:
        return f"{self.crashes} a month: {self.hours:.2f} h down ({self.share:.0%} of the {BUDGET_HOURS:.1f} h budget)"


def monthly(crashes: int, ready_s: float, not_back_rate: float) -> Cost:
    """Down time a month for this many node crashes: each costs the node's return and then
    either the pod's own way back (ready_s, measured) or, at not_back_rate, a person."""
    each = NODE_BACK_S + (1 - not_back_rate) * ready_s + not_back_rate * PERSON_S
    hours = crashes * each / 3600
    return Cost(crashes, hours, hours / BUDGET_HOURS)


def assumptions() -> str:
    return (f"Assumed, not measured: a crashed node is back in {NODE_BACK_S // 60} minutes; when the server does "
            f"not come back by itself a person fixes it in {PERSON_S // 3600} hours (the dev cluster has no on-call).")
