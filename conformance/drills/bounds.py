"""How much a count of trials can say: the exact (Clopper-Pearson) upper bound, at 95%
confidence, of a rate seen k times in n trials, and whether a sample is large enough to back
a claim. 0 of 30 is at most 9.5% (the rule of three: about 3/n); 0 of 3, at most 63%."""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

CONFIDENCE = 0.95
# A claim of "it does not happen" wants the bound under this: 10% (0 of 29 or more).
CLAIM_BOUND = 0.10


def _binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1))


def upper_bound(k: int, n: int, confidence: float = CONFIDENCE) -> float:
    """The largest rate p for which seeing k or fewer in n still has probability >= 1 - confidence
    (one-sided, exact): Clopper-Pearson's upper limit."""
    if n <= 0:
        return 1.0
    if k >= n:
        return 1.0
    alpha = 1 - confidence
    low, high = k / n, 1.0
    for _ in range(100):  # bisection: the CDF falls as p rises
        mid = (low + high) / 2
        if _binomial_cdf(k, n, mid) > alpha:
            low = mid
        else:
            high = mid
    return high


@dataclass(frozen=True)
class Rate:
    what: str
    k: int
    n: int

    @property
    def bound(self) -> float:
        return upper_bound(self.k, self.n)

    @property
    def enough(self) -> bool:
        """Whether the sample backs "rarely, if ever": its bound under CLAIM_BOUND."""
        return self.bound < CLAIM_BOUND


def trials_for(bound: float, confidence: float = CONFIDENCE) -> int:
    """How many trials with none seen bound a rate under bound (29 for 10% at 95%)."""
    return next(n for n in range(1, 100_000) if upper_bound(0, n, confidence) < bound)
