"""The pooling prior's spread between items: one for the shop, each category's own, or a number
(the spread a run found, kept by the simulator's refits)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from storewise import columns as c
from storewise.columns import RAW, RAW_SE, SD
from storewise.settings import ElasticityConfig
from training.pricing.elasticity import PRIOR_SPREAD, pool

# Category A's two items disagree by 2; category B's three agree exactly. Every standard
# error is 0.1, so each estimate's own noise is 0.01 in variance.
TABLE = pd.DataFrame(
    {
        c.ITEM_ID: ["a1", "a2", "b1", "b2", "b3"],
        c.CATEGORY: ["A", "A", "B", "B", "B"],
        RAW: [-1.0, -3.0, -2.0, -2.0, -2.0],
        RAW_SE: [0.1] * 5,
    }
)


def prior_sd(between: float, size: int) -> float:
    """By hand: the spread between items plus the variance of the category's mean."""
    mean_variance = 1 / (size / (0.01 + between))
    return float(np.sqrt(between + mean_variance))


def posterior_sd(between: float, size: int) -> float:
    return float(1 / np.sqrt(1 / 0.01 + 1 / prior_sd(between, size) ** 2))


def test_the_shop_spread_comes_from_every_category_around_its_own_mean() -> None:
    # deviations from the category means: A +1 and -1, B 0, 0, 0; 5 items less 2 means
    # leaves 3 degrees of freedom: 2 / 3, less the estimates' own noise 0.01
    shop = 2 / 3 - 0.01
    pooled = pool(TABLE, ElasticityConfig(prior_spread="shop")).set_index(c.ITEM_ID)
    assert pooled.loc["b1", SD] == pytest.approx(posterior_sd(shop, 3))
    assert pooled.loc["a1", SD] == pytest.approx(posterior_sd(shop, 2))


def test_a_category_of_agreeing_items_alone_gets_the_floor() -> None:
    # B's own spread: variance 0 less 0.01, so the floor 0.15 squared
    settings = ElasticityConfig(prior_spread="category")
    pooled = pool(TABLE, settings).set_index(c.ITEM_ID)
    assert pooled.loc["b1", SD] == pytest.approx(posterior_sd(settings.min_prior_sd**2, 3))
    # A's own: population variance 1 less 0.01
    assert pooled.loc["a1", SD] == pytest.approx(posterior_sd(1 - 0.01, 2))


def test_the_pooling_records_the_spread_it_used() -> None:
    assert pool(TABLE, ElasticityConfig(prior_spread="shop")).attrs[PRIOR_SPREAD] == pytest.approx(
        np.sqrt(2 / 3 - 0.01)
    )
    assert pool(TABLE, ElasticityConfig(prior_spread="category")).attrs[PRIOR_SPREAD] is None


def test_a_number_is_the_spread_itself() -> None:
    pooled = pool(TABLE, ElasticityConfig(prior_spread=0.5)).set_index(c.ITEM_ID)
    assert pooled.loc["b1", SD] == pytest.approx(posterior_sd(0.25, 3))
    assert pooled.loc["a1", SD] == pytest.approx(posterior_sd(0.25, 2))


def test_a_wild_new_item_moves_the_estimated_spread_but_not_a_kept_one() -> None:
    # a third item in A with a wild, noisy estimate (as a refit's new item): A's deviations
    # from its mean -5.467 are +4.467, +2.467, -6.933 (squares 74.107 in all); 6 items less 2
    # means leave 4 degrees of freedom, less the mean squared error (0.05 + 40.96) / 6
    wild = pd.concat(
        [TABLE, pd.DataFrame({c.ITEM_ID: ["a3"], c.CATEGORY: ["A"], RAW: [-12.4], RAW_SE: [6.4]})],
        ignore_index=True,
    )
    deviations = np.array([-1.0, -3.0, -12.4]) - np.mean([-1.0, -3.0, -12.4])
    estimated = np.sum(deviations**2) / 4 - (5 * 0.01 + 6.4**2) / 6
    assert pool(wild, ElasticityConfig(prior_spread="shop")).attrs[PRIOR_SPREAD] == pytest.approx(
        np.sqrt(estimated)
    )
    # B's three items: their intervals widen with the estimate, and stay with the kept spread
    shop = 2 / 3 - 0.01
    widened = pool(wild, ElasticityConfig(prior_spread="shop")).set_index(c.ITEM_ID)
    assert widened.loc["b1", SD] == pytest.approx(posterior_sd(estimated, 3))
    kept = pool(wild, ElasticityConfig(prior_spread=float(np.sqrt(shop)))).set_index(c.ITEM_ID)
    assert kept.loc["b1", SD] == pytest.approx(posterior_sd(shop, 3))


@pytest.mark.parametrize("spread", [0.0, -0.3, float("inf"), float("nan")])
def test_a_spread_that_is_not_a_positive_finite_number_is_refused(spread: float) -> None:
    with pytest.raises(ValidationError, match="prior_spread"):
        ElasticityConfig(prior_spread=spread)
