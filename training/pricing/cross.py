"""Cross-price effects: whether the data supports them, and the shelf index they act through.

Items on one shelf (a store's category) compete: a cut on one takes sales from the
others. Both elasticity models measure it through a shelf index, the mean over the
shelf's other items of their log price relative to their usual price, and keep it only
when a Wald test (every item's or product's shelf effect zero) rejects at the configured
level; otherwise the finding says why it was left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

Z90 = 1.645


@dataclass(frozen=True)
class CrossFinding:
    """Whether cross-price effects are in the model, and the measurement that decided it."""

    used: bool
    reason: str
    wald: float = float("nan")
    p_value: float = float("nan")
    excluding_zero: int = 0  # estimates whose 90% interval excludes 0


def wald_finding(estimates: np.ndarray, covariance: np.ndarray, level: float, what: str) -> CrossFinding:
    """A Wald test that every estimate is zero, as a finding a person can read.

    `covariance` is the estimates' covariance matrix, or, for independent estimates (one
    fit per item), their variances as a vector: a dense diagonal of 20,000 items is 3.2 GB
    and its pseudo-inverse hours of work (what stopped `train pricing` at 10x the large
    shop), where the statistic is a sum."""
    if covariance.ndim == 1:
        variances = np.maximum(covariance, 0)
        positive = variances > 0  # as the pseudo-inverse does: a zero variance adds nothing
        wald = float(np.sum(estimates[positive] ** 2 / variances[positive]))
    else:
        variances = np.maximum(np.diag(covariance), 0)
        wald = float(estimates @ np.linalg.pinv(covariance) @ estimates)
    p_value = float(stats.chi2.sf(wald, len(estimates)))
    sd = np.sqrt(variances)
    excluding = int(np.sum((estimates - Z90 * sd > 0) | (estimates + Z90 * sd < 0)))
    test = f"Wald chi2 {wald:.1f} on {len(estimates)} df, p = {p_value:.2g}"
    counts = f"{excluding} of {len(estimates)} {what}' 90% intervals exclude 0"
    if p_value < level:
        return CrossFinding(True, f"supported ({test}; {counts})", wald, p_value, excluding)
    return CrossFinding(
        False, f"not supported by the data ({test}; {counts}): left out", wald, p_value, excluding
    )


def shelf_index(shelf: pd.Series, date: pd.Series, log_relative_price: pd.Series) -> np.ndarray:
    """Mean relative log price of the other items on the same shelf in the same period."""
    keys = [shelf.to_numpy(), date.to_numpy()]
    grouped = log_relative_price.groupby(keys)
    total = grouped.transform("sum").to_numpy()
    count = grouped.transform("size").to_numpy()
    own = log_relative_price.to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 1, (total - own) / (count - 1), 0.0)
