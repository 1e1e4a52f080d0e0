"""Confidence intervals the evaluation gate decides on.

* :func:`wilson_interval`: the Wilson score interval of a binomial share (``k`` of ``n``),
  good at small ``n`` and at shares of 0 or 1, where the normal approximation is not.
* :func:`bootstrap_mean_interval`: a percentile bootstrap interval of the mean of paired
  differences (candidate − current, one number per held-out pair or context). The
  resampling uses its own seeded generator, so the same numbers always give the same
  interval.

Pure functions on plain numbers; golden tests in ``tests/trainer/test_gate_intervals.py``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from statistics import NormalDist

from prefloop.protocol import Interval


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie strictly between 0 and 1")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of the share ``successes / trials`` (0 to 1 when no trials)."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials")
    if trials == 0:
        return Interval(estimate=0.0, low=0.0, high=1.0, confidence=confidence)
    z = _z(confidence)
    share = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(
        estimate=share,
        low=0.0 if successes == 0 else max(0.0, centre - half),
        high=1.0 if successes == trials else min(1.0, centre + half),
        confidence=confidence,
    )


def bootstrap_mean_interval(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    samples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of the mean of ``values`` (paired differences).

    ``samples`` resamples of ``len(values)`` values drawn with replacement by a generator
    seeded with ``seed``; the interval holds the central ``confidence`` share of their
    means. One value gives a zero-width interval at it; none gives 0 with no width.
    """
    _z(confidence)
    n = len(values)
    if n == 0:
        return Interval(estimate=0.0, low=0.0, high=0.0, confidence=confidence)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(estimate=mean, low=mean, high=mean, confidence=confidence)
    rng = random.Random(seed)
    data = list(values)
    means = sorted(math.fsum(rng.choices(data, k=n)) / n for _ in range(samples))
    tail = (1.0 - confidence) / 2.0
    low_index = max(0, math.floor(tail * samples))
    high_index = min(samples - 1, math.ceil((1.0 - tail) * samples) - 1)
    return Interval(
        estimate=mean, low=means[low_index], high=means[high_index], confidence=confidence
    )
