"""The pricing simulator: the demo shop's true demand run forward under a policy.

Each run starts from the end of the generated history (stock, deliveries on their way)
and steps `ShopDynamics` day by day, the same model that generated the history, with the
same seasons and replenishment. Policies:
- `fixed`: the list price every day;
- `optimizer`: the fitted model's policy, its demand level updated each day from the views
  the shop saw in the last week (what a live shop knows);
- `oracle`: the same policy and guardrails, but with the true elasticity, no
  uncertainty, and the true expected demand of the day.
The same seed is used for every policy, so differences are the policies', not luck's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from inference.pricing.model import PricingModel
from inference.pricing.policy import decide_arrays
from intake.demo.dynamics import ShopDynamics
from storewise.shop import ShopPaths

POLICIES = ("fixed", "optimizer", "oracle")


@dataclass
class SimulationResult:
    summary: pd.DataFrame  # one row per policy
    daily: pd.DataFrame  # policy, day, item, price, units, stock


def simulate(
    shop: ShopPaths, model: PricingModel, days: int, seed: int, track_items: int = 3
) -> SimulationResult:
    truth, item_ids, next_day = ShopDynamics.load(shop.ground_truth)
    missing = [item for item in item_ids.astype(str) if item not in model.position]
    if missing:
        raise ValueError(f"the pricing model does not cover every item of the demo shop (e.g. {missing[0]})")
    positions = np.array([model.position[item] for item in item_ids.astype(str)], dtype=np.int64)
    list_price = model.arrays["list_price"][positions]
    cost = truth.items.unit_cost
    tracked = np.argsort(-model.arrays["daily_units_at_reference"][positions])[:track_items]
    rows, daily = [], []
    for policy in POLICIES:
        dynamics, _, _ = ShopDynamics.load(shop.ground_truth)
        rng = np.random.default_rng(seed)
        prices = list_price.copy()
        recent_views: list[np.ndarray] = []
        totals = {"profit": 0.0, "revenue": 0.0, "units": 0.0, "stockout_item_days": 0.0, "lost_units": 0.0}
        promo = np.zeros(len(prices), bool)
        for step in range(days):
            day = next_day + step
            if policy == "optimizer":
                prices = _optimizer_prices(model, positions, prices, dynamics.stock, recent_views)
            elif policy == "oracle":
                prices = _oracle_prices(model, positions, truth, dynamics, day, prices, cost)
            outcome = dynamics.step(day, prices, promo, rng)
            recent_views = [*recent_views[-6:], outcome.views]
            totals["profit"] += float(np.sum(outcome.units * (prices - cost)))
            totals["revenue"] += float(np.sum(outcome.units * prices))
            totals["units"] += float(outcome.units.sum())
            totals["stockout_item_days"] += float(outcome.stocked_out.sum())
            totals["lost_units"] += float((outcome.wanted_units - outcome.units).sum())
            for item in tracked:
                daily.append(
                    (
                        policy,
                        step,
                        str(item_ids.iloc[item]),
                        float(prices[item]),
                        int(outcome.units[item]),
                        int(dynamics.stock[item]),
                    )
                )
        rows.append(
            {
                "policy": policy,
                "seed": seed,
                "days": days,
                **totals,
                "leftover_stock_units": float(dynamics.stock.sum()),
                "leftover_stock_value": float(np.sum(dynamics.stock * cost)),
            }
        )
    summary = pd.DataFrame(rows)
    oracle = summary.loc[summary["policy"] == "oracle", "profit"].iloc[0]
    summary["profit_share_of_oracle"] = summary["profit"] / oracle
    return SimulationResult(
        summary, pd.DataFrame(daily, columns=["policy", "day", "item_id", "price", "units", "stock"])
    )


def _optimizer_prices(
    model: PricingModel,
    positions: np.ndarray,
    prices: np.ndarray,
    stock: np.ndarray,
    recent_views: list[np.ndarray],
) -> np.ndarray:
    overrides: dict[str, np.ndarray] = {"current_price": prices, "stock": stock.astype(float)}
    if recent_views and model.exposure == "views":
        base_rate = model.items["base_rate"].to_numpy(float)[positions]
        views = np.mean(recent_views, axis=0)
        reference = model.arrays["reference_price"][positions]
        elasticity = model.arrays["elasticity"][positions]
        overrides["daily_units"] = base_rate * views * (prices / reference) ** elasticity
    return decide_arrays(model.states(positions, **overrides), model.settings, model.currency)["price"]


def _oracle_prices(
    model: PricingModel,
    positions: np.ndarray,
    truth: ShopDynamics,
    dynamics: ShopDynamics,
    day: int,
    prices: np.ndarray,
    cost: np.ndarray,
) -> np.ndarray:
    no_promo = np.zeros(len(prices), bool)
    true_elasticity = truth.items.elasticity
    state = model.states(positions)
    state.update(
        {
            "current_price": prices,
            "stock": dynamics.stock.astype(float),
            "unit_cost": cost.astype(float),
            "elasticity": true_elasticity,
            "low_90": true_elasticity,
            "high_90": true_elasticity,
            "item_evidence": np.ones(len(prices), bool),
            "daily_units": dynamics.expected_units(day, prices, no_promo),
            "demand_change": np.full(len(prices), np.nan),
        }
    )
    return decide_arrays(state, model.settings, model.currency)["price"]
