"""Short stock is stretched until the next delivery when the shop's purchase orders say
when it comes (the optional `delivery_days`), else for `low_cover_days`: worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inference.pricing.policy import decide
from storewise.settings import PricingSettings

SETTINGS = PricingSettings()
# the interval (-3 to -1) allows neither a cut nor a rise: the target is the list price,
# so only the inventory step moves it. 12 units at 2 a day last 6 days at 79.90.
ITEM = {
    "current_price": 79.9,
    "list_price": 79.9,
    "unit_cost": 30.0,
    "stock": 12.0,
    "elasticity": -2.0,
    "low_90": -3.0,
    "high_90": -1.0,
    "item_evidence": True,
    "daily_units": 2.0,
    "demand_change": np.nan,
}


def test_stock_is_stretched_until_the_promised_delivery() -> None:
    items = pd.DataFrame(
        [
            # the delivery comes in 4 days: 6 days of stock are enough, the list price stays
            {**ITEM, "item_id": "soon", "delivery_days": 4.0},
            # in 8 days: lasting 8 days takes 12 / 8 = 1.5 a day, 79.9 x (1.5 / 2) ** (1 / -2) = 92.26
            {**ITEM, "item_id": "later", "delivery_days": 8.0},
            # no date known: low_cover_days (10): 79.9 x (1.2 / 2) ** (1 / -2) = 103.15
            {**ITEM, "item_id": "unknown", "delivery_days": np.nan},
        ]
    )
    assert SETTINGS.inventory.low_cover_days == 10
    decided = decide(items, SETTINGS)
    assert decided["target_price"].tolist() == pytest.approx([79.9, 92.26, 103.15], abs=0.01)
    assert "days of stock left" not in decided["reason"].iloc[0]
    # the cover at the price it moves to today (87.89, the 10% a day limit): 12 / (2 x
    # (87.89 / 79.9) ** -2) = 7.3 days
    assert "7 days of stock left (the next delivery is due in 8 days)" in decided["reason"].iloc[1]
    assert "days of stock left," in decided["reason"].iloc[2]


def test_a_far_delivery_does_not_stretch_stock_that_is_long() -> None:
    # 300 units at 2 a day last 150 days: past high_cover_days (120), so the price comes down
    # to move them, even with the next delivery 200 days away (stretching stops at 120 days)
    assert SETTINGS.inventory.high_cover_days == 120
    decided = decide(
        pd.DataFrame([{**ITEM, "item_id": "a", "stock": 300.0, "delivery_days": 200.0}]), SETTINGS
    )
    # lasting 120 days takes 2.5 a day: 79.9 x (2.5 / 2) ** (1 / -2) = 71.46
    assert decided["target_price"].iloc[0] == pytest.approx(71.46, abs=0.01)
    assert "days of stock on hand" in decided["reason"].iloc[0]
    assert "days of stock left" not in decided["reason"].iloc[0], "not short and long at once"


def test_without_the_column_the_rule_is_low_cover_days() -> None:
    with_unknown = decide(pd.DataFrame([{**ITEM, "item_id": "a", "delivery_days": np.nan}]), SETTINGS)
    without = decide(pd.DataFrame([{**ITEM, "item_id": "a"}]), SETTINGS)
    pd.testing.assert_frame_equal(with_unknown, without)
