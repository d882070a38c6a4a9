"""Cross-price effects: the Wald finding and the shelf index, on numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.pricing.cross import shelf_index, wald_finding


def test_the_wald_finding_keeps_effects_only_when_the_test_rejects() -> None:
    # estimates (2, 0) with unit variances: chi2 = 4 on 2 df, p = exp(-2) = 0.135
    finding = wald_finding(np.array([2.0, 0.0]), np.eye(2), 0.05, "products")
    assert finding.wald == pytest.approx(4.0)
    assert finding.p_value == pytest.approx(math.exp(-2))
    assert not finding.used
    assert "left out" in finding.reason
    assert finding.excluding_zero == 1  # 2 - 1.645 > 0; 0 +- 1.645 contains 0
    # (3, 3): chi2 = 18, p = exp(-9)
    kept = wald_finding(np.array([3.0, 3.0]), np.eye(2), 0.05, "products")
    assert kept.used
    assert kept.p_value == pytest.approx(math.exp(-9))
    assert "2 of 2 products' 90% intervals exclude 0" in kept.reason


def test_independent_estimates_take_their_variances_as_a_vector() -> None:
    # (2, 1, 5) with variances (1, 4, 0): 4 / 1 + 1 / 4 = 4.25, the zero variance adds
    # nothing (as the pseudo-inverse of the diagonal does), 3 df
    estimates, variances = np.array([2.0, 1.0, 5.0]), np.array([1.0, 4.0, 0.0])
    finding = wald_finding(estimates, variances, 0.05, "items")
    assert finding.wald == pytest.approx(4.25)
    matrix = wald_finding(estimates, np.diag(variances), 0.05, "items")
    assert (matrix.wald, matrix.p_value, matrix.excluding_zero) == pytest.approx(
        (finding.wald, finding.p_value, finding.excluding_zero)
    )


def test_the_shelf_index_is_the_mean_of_the_other_items_on_the_shelf_that_period() -> None:
    shelf = pd.Series(["a", "a", "a", "b", "a", "a"])
    date = pd.Series(["w1", "w1", "w1", "w1", "w2", "w2"])
    log_price = pd.Series([0.3, -0.3, 0.6, 0.9, -0.2, 0.4])
    index = shelf_index(shelf, date, log_price)
    expected = [(-0.3 + 0.6) / 2, (0.3 + 0.6) / 2, (0.3 - 0.3) / 2, 0.0, 0.4, -0.2]
    assert index == pytest.approx(expected)
