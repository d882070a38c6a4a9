"""The pooling prior's spread between items: one for the shop, or each category's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storewise import columns as c
from storewise.columns import RAW, RAW_SE, SD
from storewise.settings import ElasticityConfig
from training.pricing.elasticity import pool

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
