"""Paired bootstrap intervals over customers: how sure a difference between two models is.

Both models are scored on the same customers, so the per-customer differences are what is
resampled (a paired bootstrap): customers are drawn with replacement, the mean difference is
recomputed, and the interval is the middle `confidence` share of those means (percentile
method). A customer evaluated in several validation folds is one cluster: all their folds
are drawn together, since they are not independent evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean difference and its bootstrap interval."""

    mean: float
    low: float
    high: float

    @property
    def clearly_above_zero(self) -> bool:
        return self.low > 0

    @property
    def clearly_below_zero(self) -> bool:
        return self.high < 0

    def describe(self, digits: int = 4) -> str:
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def describe_gains(gains: dict[str, Interval]) -> str:
    """Per-protocol intervals as one line ("discovery +0.0124 [+0.0080, +0.0168]; ..."), as
    the run logs and prints LightFM's screen and confirmation; empty for none."""
    return "; ".join(f"{protocol} {gain.describe()}" for protocol, gain in gains.items())


class Bootstrap:
    """Resamples drawn once and reused for every comparison on the same customers (common
    random numbers: two comparisons differ by the models, not by the draws)."""

    def __init__(self, clusters: np.ndarray, *, samples: int, confidence: float, seed: int) -> None:
        codes, self.n_clusters = _codes(clusters)
        self.codes = codes
        self.confidence = confidence
        rng = np.random.default_rng(seed)
        self.draws = rng.integers(0, max(self.n_clusters, 1), size=(samples, self.n_clusters))
        self.counts = np.bincount(codes, minlength=self.n_clusters).astype(np.float64)
        self.drawn_counts = self.counts[self.draws].sum(axis=1)

    def interval(self, difference: np.ndarray) -> Interval:
        """The mean of `difference` (one value per observation, in the clusters' order) and
        its `confidence` interval."""
        if not len(difference):
            return Interval(0.0, 0.0, 0.0)
        sums = np.bincount(self.codes, weights=difference, minlength=self.n_clusters)
        means = sums[self.draws].sum(axis=1) / np.maximum(self.drawn_counts, 1)
        tail = (1 - self.confidence) / 2
        low, high = np.quantile(means, [tail, 1 - tail])
        return Interval(float(difference.mean()), float(low), float(high))


def _codes(clusters: np.ndarray) -> tuple[np.ndarray, int]:
    _, codes = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
    return codes.astype(np.int64), int(codes.max(initial=-1)) + 1


def paired_interval(
    difference: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    samples: int,
    confidence: float,
    seed: int,
) -> Interval:
    """One difference's interval (each observation its own cluster unless `clusters` given)."""
    ids = np.arange(len(difference)) if clusters is None else clusters
    return Bootstrap(ids, samples=samples, confidence=confidence, seed=seed).interval(difference)
