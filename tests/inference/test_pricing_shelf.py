"""The policy's shelf, observed-price and cautious-target steps, on prices worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inference.pricing.policy import decide
from storewise.settings import PricingSettings

SETTINGS = PricingSettings()
# the estimate's own best price (the shelf and observed-price steps on their own)
AT_ESTIMATE = SETTINGS.model_copy(
    update={"uncertainty": SETTINGS.uncertainty.model_copy(update={"cautious_target": False})}
)
ITEM = {
    "current_price": 79.9,
    "list_price": 79.9,
    "unit_cost": 30.0,
    "stock": np.nan,  # unknown: no inventory step
    "elasticity": -3.0,
    "low_90": -3.1,
    "high_90": -2.9,
    "item_evidence": True,
    "daily_units": 2.0,
    "demand_change": np.nan,
}
TWO = pd.DataFrame([{**ITEM, "item_id": "a"}, {**ITEM, "item_id": "b"}])


def test_alone_each_item_goes_to_cost_e_over_1_plus_e() -> None:
    assert decide(TWO, AT_ESTIMATE)["target_price"].tolist() == pytest.approx([45.0, 45.0])  # 30 * 3 / 2


def test_a_cut_is_priced_at_the_least_elastic_end_a_rise_at_the_most_elastic() -> None:
    items = pd.DataFrame(
        [
            {**ITEM, "item_id": "cut"},  # -2.9: 30 * 2.9 / 1.9 = 45.79 (the estimate -3: 45)
            {**ITEM, "item_id": "rise", "unit_cost": 60.0},  # -3.1: 60 * 3.1 / 2.1 = 88.57 (estimate: 90)
            # a cut at -1.0 never pays, a rise at -3.0 neither (30 * 3 / 2 = 45 is a cut): list price
            {**ITEM, "item_id": "stay", "elasticity": -2.0, "low_90": -3.0, "high_90": -1.0},
        ]
    )
    decided = decide(items, SETTINGS)
    assert decided["target_price"].tolist() == pytest.approx([45.79, 88.57, 79.9], abs=0.005)
    assert (
        "RM45.00 at the estimate: a move is priced at the interval's cautious end"
        in decided["reason"].iloc[0]
    )


def test_substitutes_on_one_shelf_are_priced_together() -> None:
    # D_i = A p_i^e p_j^g: the joint first-order condition at equal prices gives
    # p = c (e + g) / (1 + e + g) = 30 * -2 / -1 = 60 for e = -3, g = 1 (alone: 45)
    decided = decide(TWO.assign(shelf=[0, 0], cross_elasticity=[1.0, 1.0]), AT_ESTIMATE)
    assert decided["target_price"].tolist() == pytest.approx([60.0, 60.0], abs=0.01)
    assert "RM45.00 alone: a cut takes sales from the other items on its shelf" in decided["reason"].iloc[0]


def test_the_target_stays_near_the_prices_the_item_sold_at() -> None:
    decided = decide(TWO.assign(observed_low=[70.0, 40.0], observed_high=[90.0, 90.0]), AT_ESTIMATE)
    # a: 45 is far below the lowest price it sold at: 70 x (1 - 0.10) = 63; b: 45 is inside
    assert decided["target_price"].tolist() == pytest.approx([63.0, 45.0])
    assert "kept near the prices it sold at (RM70.00 to RM90.00)" in decided["reason"].iloc[0]
    assert "kept near" not in decided["reason"].iloc[1]


def test_a_shelf_effect_the_test_left_out_still_bounds_a_cut() -> None:
    # point cross effect 0 (not kept), its interval -0.5 to 1.0: a cut is priced at e = -2.9
    # and g = 1.0, p = c (e + g) / (1 + e + g) = 30 * 1.9 / 0.9 = 63.33; a rise at e = -3.1,
    # g = -0.5 would be 30 * 3.6 / 2.6 = 41.54, no rise. At the estimate: 45 alone.
    shelf = TWO.assign(
        shelf=[0, 0], cross_elasticity=[0.0, 0.0], cross_low=[-0.5, -0.5], cross_high=[1.0, 1.0]
    )
    assert decide(shelf, SETTINGS)["target_price"].tolist() == pytest.approx([63.33, 63.33], abs=0.01)
    assert decide(shelf, AT_ESTIMATE)["target_price"].tolist() == pytest.approx([45.0, 45.0])


def test_stretching_short_stock_stays_near_the_prices_the_item_sold_at() -> None:
    # 5 units at 2 a day at 79.90: lasting 10 days takes 79.9 x (5 / 20) ** (1 / -3) = 126.8,
    # above the ceiling (119.85) and far above the highest price it sold at: 90 x 1.10 = 99
    short = pd.DataFrame(
        [{**ITEM, "item_id": "a", "stock": 5.0, "observed_low": 70.0, "observed_high": 90.0}]
    )
    decided = decide(short, SETTINGS).iloc[0]
    assert decided["target_price"] == pytest.approx(99.0)
    assert "days of stock left" in decided["reason"]
