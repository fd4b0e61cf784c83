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


def _resampled_means(data: np.ndarray, groups: Sequence | None, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of `data`: cases resampled with replacement, or whole groups of cases when `groups` is given
    (the questions of one paraphrase family stand or fall together, so they are resampled together)."""
    if groups is None:
        return data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    labels, index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    sums = np.bincount(index, weights=data, minlength=labels.size)
    counts = np.bincount(index, minlength=labels.size).astype(float)
    picks = rng.integers(0, labels.size, size=(resamples, labels.size))
    return sums[picks].sum(axis=1) / counts[picks].sum(axis=1)


def _clean(values: Sequence[float], groups: Sequence | None) -> tuple[np.ndarray, list | None]:
    keep = [i for i, v in enumerate(values) if v is not None and not np.isnan(v)]
    data = np.asarray([values[i] for i in keep], dtype=float)
    return data, None if groups is None else [groups[i] for i in keep]


def bootstrap_interval(values: Sequence[float], level: float = 0.95, resamples: int = RESAMPLES,
                       seed: int = 42, groups: Sequence | None = None) -> Interval:
    """The mean of `values` with a percentile-bootstrap interval (cases, or the `groups` they belong to, resampled
    with replacement)."""
    data, groups = _clean(list(values), None if groups is None else list(groups))
    if data.size == 0:
        raise ValueError("no values to bootstrap")
    means = _resampled_means(data, groups, resamples, np.random.default_rng(seed))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(data.mean()), float(low), float(high), int(data.size), level)


def difference_interval(first: Sequence[float], second: Sequence[float], level: float = 0.95,
                        resamples: int = RESAMPLES, seed: int = 42, first_groups: Sequence | None = None,
                        second_groups: Sequence | None = None) -> Interval:
    """Mean of `first` minus mean of `second` for two independent sets of cases (say, an audit set and the test
    split), each resampled on its own; n is the size of the first."""
    a, a_groups = _clean(list(first), None if first_groups is None else list(first_groups))
    b, b_groups = _clean(list(second), None if second_groups is None else list(second_groups))
    if a.size == 0 or b.size == 0:
        raise ValueError("no values to compare")
    rng = np.random.default_rng(seed)
    differences = _resampled_means(a, a_groups, resamples, rng) - _resampled_means(b, b_groups, resamples, rng)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return Interval(float(a.mean() - b.mean()), float(low), float(high), int(a.size), level)


def paired_difference(candidate: Sequence[float], baseline: Sequence[float], level: float = 0.90,
                      resamples: int = RESAMPLES, seed: int = 42, groups: Sequence | None = None) -> Interval:
    """Mean of candidate - baseline over paired cases, with a bootstrap interval (pairs resampled together, and the
    pairs of one group, such as a paraphrase family, resampled together when `groups` is given)."""
    kept = [(c, b, None if groups is None else groups[i]) for i, (c, b) in enumerate(zip(candidate, baseline))
            if c is not None and b is not None and not (np.isnan(c) or np.isnan(b))]
    if not kept:
        raise ValueError("no paired values")
    return bootstrap_interval([c - b for c, b, _ in kept], level=level, resamples=resamples, seed=seed,
                              groups=None if groups is None else [g for _, _, g in kept])
