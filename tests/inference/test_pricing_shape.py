"""Semi-log demand in the policy: its best price, the cautious ends, and its shelf."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inference.pricing.model import PricingModel
from inference.pricing.policy import decide
from tests.inference.test_pricing_shelf import AT_ESTIMATE, SETTINGS
from tests.inference.test_pricing_shelf import ITEM as SHELF_ITEM

# the shelf tests' item, semi-log around a reference price of 75
ITEM = {**SHELF_ITEM, "item_id": "a", "reference_price": 75.0, "semi_log": True}


def best_on_a_grid(cost: float, elasticity: float, reference: float) -> float:
    """Profit (p - cost) exp(e (p - reference) / reference) maximized by brute force."""
    prices = np.linspace(cost, 3 * reference, 200_001)
    return float(prices[np.argmax((prices - cost) * np.exp(elasticity * (prices / reference - 1)))])


def test_semi_log_demand_peaks_at_cost_minus_reference_over_e() -> None:
    decided = decide(pd.DataFrame([ITEM]), AT_ESTIMATE)
    assert decided["target_price"].iloc[0] == pytest.approx(30 + 75 / 3, abs=0.005)  # 55
    assert decided["target_price"].iloc[0] == pytest.approx(best_on_a_grid(30, -3.0, 75), abs=0.01)
    # constant elasticity with the same numbers: 30 * 3 / 2 = 45
    constant = decide(pd.DataFrame([{**ITEM, "semi_log": False}]), AT_ESTIMATE)
    assert constant["target_price"].iloc[0] == pytest.approx(45.0, abs=0.005)
    assert "growing with the price (semi-log demand)" in decided["reason"].iloc[0]


def test_a_semi_log_item_with_e_above_minus_one_still_has_a_best_price() -> None:
    # constant elasticity at -0.5 would go to the ceiling; semi-log: 30 + 75 / 0.5 = 180,
    # above the ceiling of 1.5 x list = 119.85
    item = {**ITEM, "elasticity": -0.5, "low_90": -0.6, "high_90": -0.4}
    assert decide(pd.DataFrame([item]), AT_ESTIMATE)["target_price"].iloc[0] == pytest.approx(119.85)
    item = {**ITEM, "elasticity": -1.0, "low_90": -1.1, "high_90": -0.9, "unit_cost": 20.0}
    decided = decide(pd.DataFrame([item]), AT_ESTIMATE)
    assert decided["target_price"].iloc[0] == pytest.approx(95.0, abs=0.005)  # 20 + 75
    assert "demand barely reacts" not in decided["reason"].iloc[0]


def test_a_cautious_semi_log_cut_is_priced_at_the_least_elastic_end() -> None:
    # the estimate -3 gives 55 (a cut from 79.9); the least elastic end -2.9 gives 30 + 75 / 2.9
    decided = decide(pd.DataFrame([ITEM]), SETTINGS)
    assert decided["target_price"].iloc[0] == pytest.approx(30 + 75 / 2.9, abs=0.005)


def test_semi_log_substitutes_on_one_shelf_are_priced_together() -> None:
    """Two semi-log items, each losing 0.3% of sales per 1% the other's price falls: the
    joint first-order condition's answer equals a brute-force search over both prices."""
    two = pd.DataFrame([{**ITEM, "item_id": "a"}, {**ITEM, "item_id": "b"}]).assign(
        shelf=[0, 0], cross_elasticity=[0.3, 0.3]
    )
    decided = decide(two, AT_ESTIMATE)["target_price"].to_numpy()
    grid = np.linspace(40.0, 119.85, 1601)
    a, b = np.meshgrid(grid, grid, indexing="ij")

    def units(own: np.ndarray, other: np.ndarray) -> np.ndarray:
        return 2.0 * np.exp(-3.0 * (own - 79.9) / 75.0) * (other / 79.9) ** 0.3

    profit = (a - 30) * units(a, b) + (b - 30) * units(b, a)
    best = np.unravel_index(profit.argmax(), profit.shape)
    assert decided == pytest.approx([grid[best[0]], grid[best[1]]], abs=0.1)
    assert decided[0] > 55.0  # alone: 30 + 75 / 3


def test_curvature_does_not_turn_a_semi_log_item_back_into_constant_elasticity() -> None:
    item = {**ITEM, "curvature": 1e-9}
    assert decide(pd.DataFrame([item]), AT_ESTIMATE)["target_price"].iloc[0] == pytest.approx(55.0, abs=0.35)


def test_a_semi_log_pricing_model_saves_loads_and_prices_as_such(tmp_path: Path) -> None:
    items = pd.DataFrame(
        {
            "item_id": ["a", "b"],
            "current_price": [79.9, 79.9],
            "list_price": [79.9, 79.9],
            "unit_cost": [30.0, 30.0],
            "stock": [np.nan, np.nan],
            "elasticity": [-3.0, -3.0],
            "low_90": [-3.02, -3.02],
            "high_90": [-2.98, -2.98],
            "evidence": ["item", "item"],
            "reference_price": [75.0, 75.0],
            "daily_units_at_reference": [2.0, 2.0],
            "demand_change": [np.nan, np.nan],
            "demand_shape": ["semi-log", "constant"],
        }
    )
    model = PricingModel(items, AT_ESTIMATE, "RM", "views")
    model.save(tmp_path / "pricing")
    loaded = PricingModel.load(tmp_path / "pricing")
    positions = np.array([0, 1])
    factor = loaded.price_factor(positions, np.array([90.0, 90.0]))
    assert factor == pytest.approx([np.exp(-3.0 * (90 / 75 - 1)), (90 / 75) ** -3.0])
    targets = loaded.price(["a", "b"])["target_price"]
    assert targets == pytest.approx([30 + 75 / 3, 45.0], abs=0.005)
    assert list(targets) == list(model.price(["a", "b"])["target_price"])
