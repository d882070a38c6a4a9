"""The shelf effect pooled over all items: recovered on demand with a known cross effect,
including items that never change their own price."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.demand import UNITS
from storewise import columns as c
from storewise.columns import CROSS_ELASTICITY, CROSS_HIGH, CROSS_LOW, EXPOSURE, REFERENCE_PRICE
from training.pricing.elasticity import SHELF_INDEX, _pooled_cross, pooled_shelf_effect

DAYS, ITEMS, OWN, CROSS = 400, 6, -2.0, 1.0


def shelf_demand(seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Six items on one shelf; items 0-2 vary their price, 3-5 never do. Per view, units ~
    Poisson(0.2 x (p / ref) ** -2 x exp(1.0 x the shelf index))."""
    rng = np.random.default_rng(seed)
    log_price = np.where(np.arange(ITEMS)[:, None] < 3, rng.choice([-0.2, 0.0, 0.15], (ITEMS, DAYS)), 0.0)
    others = (log_price.sum(axis=0)[None, :] - log_price) / (ITEMS - 1)
    views = rng.poisson(40, (ITEMS, DAYS)).astype(float) + 1
    units = rng.poisson(views * 0.2 * np.exp(OWN * log_price + CROSS * others))
    frame = pd.DataFrame(
        {
            c.ITEM_ID: np.repeat([f"i{k}" for k in range(ITEMS)], DAYS),
            c.PRICE: 10 * np.exp(log_price).ravel(),
            REFERENCE_PRICE: 10.0,
            EXPOSURE: views.ravel(),
            UNITS: units.ravel(),
            SHELF_INDEX: others.ravel(),
        }
    )
    return frame, pd.Series(OWN, index=[f"i{k}" for k in range(ITEMS)])


def test_a_known_shelf_effect_is_recovered_by_the_pooled_fit() -> None:
    frame, elasticity = shelf_demand(seed=0)
    estimate = pooled_shelf_effect(frame, elasticity, "views")
    assert estimate is not None
    effect, se = estimate
    assert 0 < se < 0.3
    assert effect == pytest.approx(CROSS, abs=3 * se)


def test_items_that_never_change_their_price_carry_the_effect_alone() -> None:
    frame, elasticity = shelf_demand(seed=1)
    fixed_price = frame[frame[c.ITEM_ID].isin(["i3", "i4", "i5"])]
    estimate = pooled_shelf_effect(fixed_price, elasticity, "views")
    assert estimate is not None
    assert estimate[0] == pytest.approx(CROSS, abs=3 * estimate[1])


def test_a_pooled_effect_left_out_keeps_its_own_interval_for_every_category() -> None:
    # effect 0.3 (se 0.2) pooled over all items, not kept: the point is 0; the interval is
    # 0.3 -/+ 1.645 x 0.2 (not narrowed by the number of items sharing it), split over
    # each item's 2 other shelf items in category x, 1 in category y
    table = pd.DataFrame({c.ITEM_ID: ["a", "b", "c", "d", "e"], c.CATEGORY: ["x", "x", "x", "y", "y"]})
    crossed = _pooled_cross(table, kept=False, pooled=(0.3, 0.2))
    assert crossed[CROSS_ELASTICITY].tolist() == [0.0] * 5
    low, high = 0.3 - 1.645 * 0.2, 0.3 + 1.645 * 0.2
    assert crossed[CROSS_LOW].tolist() == pytest.approx([low / 2] * 3 + [low] * 2)
    assert crossed[CROSS_HIGH].tolist() == pytest.approx([high / 2] * 3 + [high] * 2)
