"""Percentiles and bootstrap confidence intervals (numpy): how sure a figure measured on a few cases is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap interval (`level`, e.g. 0.95) over `n` cases."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def as_dict(self) -> dict:
        return {"mean": round(self.mean, 4), "low": round(self.low, 4), "high": round(self.high, 4), "n": self.n,
                "level": self.level}

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0-1) of the values, as the nearest observed value (None for no values)."""
    clean = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    if clean.size == 0:
        return None
    return float(np.percentile(clean, q * 100, method="nearest"))


def bootstrap_interval(values: Sequence[float], level: float = 0.95, resamples: int = RESAMPLES,
                       seed: int = 42) -> Interval:
    """The mean of `values` with a percentile-bootstrap interval (cases resampled with replacement)."""
    data = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    if data.size == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(data.mean()), float(low), float(high), int(data.size), level)


def paired_difference(candidate: Sequence[float], baseline: Sequence[float], level: float = 0.90,
                      resamples: int = RESAMPLES, seed: int = 42) -> Interval:
    """Mean of candidate - baseline over paired cases, with a bootstrap interval (pairs resampled together)."""
    pairs = np.asarray([(c, b) for c, b in zip(candidate, baseline)
                        if c is not None and b is not None and not (np.isnan(c) or np.isnan(b))], dtype=float)
    if pairs.size == 0:
        raise ValueError("no paired values")
    return bootstrap_interval(pairs[:, 0] - pairs[:, 1], level=level, resamples=resamples, seed=seed)
