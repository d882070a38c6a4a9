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
    # point cross effect 0 (not kept), its interval -0.5 to 1.0, the elasticity's -3.1 to
    # -2.9. A cut is priced at the 90% end of the joint elasticity e + g: half-widths 0.1 and
    # 1.0 (one other item), h = sqrt(0.1^2 + 1.0^2) = 1.005, so e = -3 + 0.01 / 1.005 =
    # -2.990 and g = 1.0 x 1.0 / 1.005 = 0.995: p = c (e + g) / (1 + e + g) = 30 x 1.995 /
    # 0.995 = 60.15. A rise (half-widths 0.1 and 0.5: e = -3.020, g = -0.490) would be
    # 30 x 3.510 / 2.510 = 41.95: no rise. At the estimate: 45 alone.
    shelf = TWO.assign(
        shelf=[0, 0], cross_elasticity=[0.0, 0.0], cross_low=[-0.5, -0.5], cross_high=[1.0, 1.0]
    )
    assert decide(shelf, SETTINGS)["target_price"].tolist() == pytest.approx([60.15, 60.15], abs=0.01)
    assert decide(shelf, AT_ESTIMATE)["target_price"].tolist() == pytest.approx([45.0, 45.0])


@pytest.mark.parametrize("size", [2, 3])
def test_a_shelf_rise_is_priced_at_the_joint_elasticitys_end_not_both_ends_at_once(size: int) -> None:
    # e = -3.0 (90%: -3.3 to -2.7) and a shelf effect of 1.5 in all (90%: 1.1 to 1.9), shared
    # by the other items (per other item 1.5 / (size - 1)); cost 40, list 79.90. At equal
    # prices p = c (e + G) / (1 + e + G), G the effect in all. Estimate: e + G = -1.5, p = 120
    # (the ceiling 119.85). Both ends at once (e -3.3, G 1.1: -2.2) would give 40 x 2.2 / 1.2
    # = 73.33, a cut, so no rise at all. The joint end: half-widths 0.3 and 0.4, h = 0.5,
    # e = -3 - 0.09 / 0.5 = -3.18, G = 1.5 - 0.16 / 0.5 = 1.18: e + G = -2.0, p = 40 x 2 / 1 =
    # 80.00; its cut end (e -2.82, G 1.82: -1.0) does not pay. 80.00 on either shelf.
    per_other = 1 / (size - 1)
    shelf = pd.DataFrame([{**ITEM, "item_id": str(i)} for i in range(size)]).assign(
        unit_cost=40.0,
        low_90=-3.3,
        high_90=-2.7,
        shelf=0,
        cross_elasticity=1.5 * per_other,
        cross_low=1.1 * per_other,
        cross_high=1.9 * per_other,
    )
    assert decide(shelf, SETTINGS)["target_price"].tolist() == pytest.approx([80.0] * size, abs=0.01)


def test_an_interval_end_on_the_wrong_side_of_the_estimate_is_not_mirrored() -> None:
    # a shelf effect left out at 0 whose interval (-0.5 to -0.1) excludes 0. A cut: distances
    # +0.1 (elasticity) and -0.1 (shelf effect), h = 0.1414: e = -3 + 0.0707, g = 0 - 0.0707,
    # e + g = -3.0, p = 30 x 3 / 2 = 45.00 (mirrored, g would be +0.0707: 46.14). A rise:
    # e = -3.020, g = -0.490, 41.95, no rise.
    shelf = TWO.assign(
        shelf=[0, 0], cross_elasticity=[0.0, 0.0], cross_low=[-0.5, -0.5], cross_high=[-0.1, -0.1]
    )
    assert decide(shelf, SETTINGS)["target_price"].tolist() == pytest.approx([45.0, 45.0], abs=0.01)


def test_an_item_the_shelf_does_not_price_with_the_others_does_not_count_as_one() -> None:
    # c is on the shelf but inelastic (-0.5: its own target is the ceiling), so the shelf's
    # target moves a and b only: their cautious prices are those of the two-item shelf
    effect = {"shelf": 0, "cross_elasticity": 0.5, "cross_low": 0.2, "cross_high": 0.8}
    two = TWO.assign(**effect)
    three = pd.concat(
        [
            two,
            pd.DataFrame(
                [{**ITEM, **effect, "item_id": "c", "elasticity": -0.5, "low_90": -0.6, "high_90": -0.4}]
            ),
        ],
        ignore_index=True,
    )
    alone = decide(two, SETTINGS)["target_price"].tolist()
    assert decide(three, SETTINGS)["target_price"].tolist()[:2] == pytest.approx(alone)


def test_stretching_short_stock_stays_near_the_prices_the_item_sold_at() -> None:
    # 5 units at 2 a day at 79.90: lasting 10 days takes 79.9 x (5 / 20) ** (1 / -3) = 126.8,
    # above the ceiling (119.85) and far above the highest price it sold at: 90 x 1.10 = 99
    short = pd.DataFrame(
        [{**ITEM, "item_id": "a", "stock": 5.0, "observed_low": 70.0, "observed_high": 90.0}]
    )
    decided = decide(short, SETTINGS).iloc[0]
    assert decided["target_price"] == pytest.approx(99.0)
    assert "days of stock left" in decided["reason"]
