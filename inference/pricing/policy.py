"""The pricing policy the service runs: a profit-maximizing price under guardrails.

For each item, vectorized over items:
1. target: with demand D(p) = D0 * (p / p0) ** e, profit (p - cost) * D(p) peaks at
   p* = cost * e / (1 + e) when e < -1; an inelastic item (e >= -1) goes to the ceiling;
2. inventory: if at the target the stock would last fewer than `low_cover_days`, the price
   rises until it lasts that long (the same stock sold dearer); beyond `high_cover_days`
   it falls until it moves in that time;
3. uncertainty: the move from today's price is a share of the way, full when the 90%
   interval of the elasticity is at most `full_move_width` wide, less when wider, and at
   most `category_evidence_move` for an item priced on its category's elasticity;
4. guardrails: at most `max_daily_change` a day, never below cost x (1 + min_margin),
   never above list x ceiling_multiple (absolute bounds win over the daily limit), and
   the shop's price ending.
Every price carries a reason a shop owner can read. Nothing here depends on who is
buying: the base price of an item at a moment is the same for every customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from storewise.settings import Guardrails, PricingSettings

ITEM_STATE_COLUMNS = (
    "item_id",
    "current_price",
    "list_price",
    "unit_cost",
    "stock",
    "elasticity",
    "low_90",
    "high_90",
    "item_evidence",
    "daily_units",
    "demand_change",
)


@dataclass(frozen=True)
class PriceDecision:
    item_id: str
    price: float
    previous_price: float
    target_price: float
    change: float
    elasticity: float
    interval: tuple[float, float]
    stock_cover_days: float | None
    reason: str


def apply_ending(prices: np.ndarray, low: np.ndarray, high: np.ndarray, ending: float) -> np.ndarray:
    """The nearest price with the shop's ending inside [low, high] (cents when none fits,
    and for prices under 1, where an ending makes no sense)."""
    base = np.floor(prices)
    candidates = np.stack([base - 1 + ending, base + ending, base + 1 + ending], axis=1)
    inside = (candidates >= low[:, None] - 1e-9) & (candidates <= high[:, None] + 1e-9)
    distance = np.where(inside, np.abs(candidates - prices[:, None]), np.inf)
    best = candidates[np.arange(len(prices)), distance.argmin(axis=1)]
    fits = np.isfinite(distance.min(axis=1)) & (prices >= 1)
    cents = np.clip(np.round(prices, 2), np.ceil(low * 100) / 100, np.floor(high * 100) / 100)
    return np.round(np.where(fits, best, cents), 2)


def decide(
    states: pd.DataFrame | dict[str, np.ndarray], settings: PricingSettings, currency: str = "RM"
) -> pd.DataFrame:
    """Prices for every row of `states` (columns ITEM_STATE_COLUMNS), as a DataFrame."""
    return pd.DataFrame(decide_arrays(states, settings, currency))


def decide_arrays(
    states: pd.DataFrame | dict[str, np.ndarray], settings: PricingSettings, currency: str = "RM"
) -> dict[str, np.ndarray]:
    """The same, on plain arrays (what the service calls for a few items: no DataFrame cost)."""
    states = {name: np.asarray(states[name]) for name in ITEM_STATE_COLUMNS}
    g, u, inv = settings.guardrails, settings.uncertainty, settings.inventory
    p0 = states["current_price"].astype(float)
    list_price = states["list_price"].astype(float)
    cost = states["unit_cost"].astype(float)
    cost = np.where(np.isnan(cost), list_price * g.default_cost_share, cost)
    elasticity = states["elasticity"].astype(float)
    low_e, high_e = states["low_90"].astype(float), states["high_90"].astype(float)
    stock = states["stock"].astype(float)
    d0 = states["daily_units"].astype(float)

    floor = cost * (1 + g.min_margin)
    # cost above list: the floor wins (never below cost + margin), up to its first ending
    first_ending = np.where(
        np.floor(floor) + g.ending >= floor, np.floor(floor) + g.ending, np.floor(floor) + 1 + g.ending
    )
    ceiling = np.where(
        floor > list_price * g.ceiling_multiple,
        np.where(floor >= 1, first_ending, floor),
        list_price * g.ceiling_multiple,
    )
    elastic = elasticity < -1
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(elastic, cost * elasticity / (1 + elasticity), ceiling)
    target = np.clip(target, floor, ceiling)

    def demand(p: np.ndarray) -> np.ndarray:
        return d0 * (p / p0) ** elasticity

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cover_at_target = stock / demand(target)
        stretch = p0 * (stock / (d0 * inv.low_cover_days)) ** (1 / elasticity)
        clear = p0 * (stock / (d0 * inv.high_cover_days)) ** (1 / elasticity)
    known = ~np.isnan(stock) & (d0 > 0) & (stock > 0)
    short = known & (cover_at_target < inv.low_cover_days)
    long = known & (cover_at_target > inv.high_cover_days)
    target = np.where(short, np.clip(np.maximum(target, stretch), floor, ceiling), target)
    target = np.where(long, np.clip(np.minimum(target, clear), floor, ceiling), target)
    out_of_stock = ~np.isnan(stock) & (stock <= 0)
    target = np.where(out_of_stock, np.clip(p0, floor, ceiling), target)

    width = high_e - low_e
    share = np.minimum(1.0, u.full_move_width / np.maximum(width, 1e-9))
    item_evidence = states["item_evidence"].astype(bool)
    share = np.where(item_evidence, share, np.minimum(share, u.category_evidence_move))
    wanted = p0 * (target / p0) ** share

    cap_low, cap_high = p0 * (1 - g.max_daily_change), p0 * (1 + g.max_daily_change)
    # absolute bounds win: a price under cost + margin goes up whatever the daily limit
    price = np.clip(np.clip(wanted, cap_low, cap_high), floor, ceiling)
    allowed_low = np.maximum(floor, np.minimum(cap_low, price))
    allowed_high = np.minimum(ceiling, np.maximum(cap_high, price))
    # held at the floor: rounding up to the next ending is fine, rounding down is not
    allowed_high = np.where(price <= floor + 1e-9, np.minimum(ceiling, floor + 1.0), allowed_high)
    price = apply_ending(price, allowed_low, allowed_high, g.ending)
    price = np.maximum(price, np.ceil(floor * 100 - 1e-6) / 100)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cover = np.where(known, stock / demand(price), np.nan)
    result = {
        "item_id": states["item_id"],
        "price": price,
        "previous_price": p0,
        "target_price": np.round(target, 2),
        "change": np.round(price / p0 - 1, 4),
        "elasticity": np.round(elasticity, 3),
        "low_90": np.round(low_e, 3),
        "high_90": np.round(high_e, 3),
        "stock_cover_days": np.round(cover, 1),
    }
    capped_flag = (wanted > cap_high + 1e-9) | (wanted < cap_low - 1e-9)
    within_cap = np.clip(wanted, cap_low, cap_high)
    at_floor = within_cap < floor + 1e-9
    at_ceiling = within_cap > ceiling - 1e-9
    demand_change = states["demand_change"].astype(float)
    result["reason"] = np.array(
        [
            _reason(
                i,
                result,
                demand_change[i],
                short[i],
                long[i],
                out_of_stock[i],
                capped_flag[i],
                at_floor[i],
                at_ceiling[i],
                share[i],
                item_evidence[i],
                elastic[i],
                floor[i] > list_price[i],
                currency,
                g,
            )
            for i in range(len(price))
        ],
        dtype=object,
    )
    return result


def _money(currency: str, amount: float) -> str:
    return f"{currency}{amount:,.2f}" if len(currency) <= 2 else f"{currency} {amount:,.2f}"


def _reason(
    i: int,
    result: dict[str, np.ndarray],
    demand_change: float,
    short: bool,
    long: bool,
    out: bool,
    capped: bool,
    at_floor: bool,
    at_ceiling: bool,
    share: float,
    item_evidence: bool,
    elastic: bool,
    cost_above_list: bool,
    currency: str,
    g: Guardrails,
) -> str:
    elasticity, low, high = result["elasticity"][i], result["low_90"][i], result["high_90"][i]
    change, cover = result["change"][i], result["stock_cover_days"][i]
    if item_evidence:
        parts = [f"elasticity {elasticity:.1f} (90%: {low:.1f} to {high:.1f})"]
    else:
        parts = [f"elasticity {elasticity:.1f} from its category (too little price history of its own)"]
    if not np.isnan(demand_change) and abs(demand_change) >= 0.15:
        parts.append(f"demand {'up' if demand_change > 0 else 'down'} {abs(demand_change):.0%} this week")
    if out:
        parts.append("out of stock: price held")
    elif short:
        parts.append(f"{cover:.0f} days of stock left")
    elif long:
        parts.append(f"{cover:.0f} days of stock on hand")
    if not elastic and not out:
        parts.append("demand barely reacts to price")
    elif not out:
        parts.append(f"best price {_money(currency, result['target_price'][i])}")
    move = "no change" if abs(change) < 5e-4 else f"{change:+.0%}"
    limits = []
    if capped and abs(change) > 5e-4 and not at_floor:
        limits.append(f"capped at the {g.max_daily_change:.0%} daily limit")
    if share < 0.999 and not out:
        limits.append(f"moving {share:.0%} of the way while the elasticity is uncertain")
    if at_floor:
        limits.append(
            f"held at cost + {g.min_margin:.0%} margin"
            + (" (cost is above list price)" if cost_above_list else "")
        )
    if at_ceiling:
        limits.append(f"at the ceiling ({g.ceiling_multiple:g}x list)")
    return ", ".join(parts) + f": {move}" + (f", {', '.join(limits)}" if limits else "")
