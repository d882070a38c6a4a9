"""The pricing policy the service runs: a profit-maximizing price under guardrails.

For each item, vectorized over items:
1. target: with demand D(p) = D0 * (p / p0) ** e, profit (p - cost) * D(p) peaks at
   p* = cost * e / (1 + e) when e < -1; an inelastic item (e >= -1) goes to the ceiling.
   Where the shop's demand was found semi-log (the elasticity e measured at a reference
   price r grows with the price: D(p) = D0 exp(e (p - p0) / r), as straight-line demand
   does towards its choke price), p* = cost - r / e for any e < 0.
   Where the model estimated cross-price effects (items on one shelf: a cut on one takes
   sales from the others), the targets of a shelf maximize the shelf's profit together:
   p_k = (cost_k e_k - S_k / D_k) / (1 + e_k), S_k the margin the other items lose per
   1% of k's price, solved by iterating to a fixed point;
2. caution (`cautious_target`, the default): a move is priced at the 90% interval's least
   favourable end for it: a cut at the least elastic end (the fewest extra sales a cut
   can bring), a rise at the most elastic end; on a shelf with a shelf effect (kept or
   not), the own elasticity and the shelf effect together at the 90% end of the shelf's
   joint elasticity (a cut at its least elastic end: the most sales it can take from the
   shelf; a rise at the other), not each at its own end; the list price where neither
   pays. That is the best price in the worst case the data allows (max-min over the intervals): the estimate's best price once the
   intervals are narrow, the list price while the data cannot tell. The target then stays
   within `max_beyond_observed` of the prices the item sold at;
3. inventory: if at the target the stock would not last until the next delivery is due
   (`delivery_days`, where the shop's purchase orders say; else `low_cover_days`), the
   price rises until it lasts that long (the same stock sold dearer); beyond `high_cover_days`
   it falls until it moves in that time; both on the same elasticity, so both stay
   within `max_beyond_observed` of the prices it sold at. The move from today's price is
   a share of the way, full when the 90% interval is at most `full_move_width` wide,
   less when wider, and at most `category_evidence_move` for an item priced on its
   category's elasticity;
4. guardrails: at most `max_daily_change` a period (a day, or a week for weekly data),
   never below cost x (1 + min_margin), never above list x ceiling_multiple (absolute
   bounds win over the period limit), and the shop's price ending.
An unknown cost is the list price x `default_cost_share`, and the reason says so. Every
price carries a reason a shop owner can read. Nothing here depends on who is buying: the
base price of an item at a moment is the same for every customer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
# optional: the item's shelf (items priced together; -1 = alone) and its demand's
# elasticity to the price of each other item on the shelf
CROSS_COLUMNS = ("shelf", "cross_elasticity")
# optional beside them: the cross elasticity's 90% interval (a cut is priced towards its
# top, a rise towards its bottom, with the own elasticity at the shelf's joint end; without
# it, at the estimate)
CROSS_INTERVAL_COLUMNS = ("cross_low", "cross_high")
# optional: the lowest and highest price the item sold at (NaN: unknown)
OBSERVED_COLUMNS = ("observed_low", "observed_high")
# optional: log demand's curvature in log(price / reference_price) (0: constant elasticity)
CURVE_COLUMNS = ("curvature", "reference_price")
# optional: semi-log demand (True: log demand linear in the price, the elasticity given at
# reference_price), else constant elasticity
SHAPE_COLUMNS = ("semi_log", "reference_price")
# optional: days (periods, for weekly data) until the item's next delivery is due, as the
# shop's open purchase orders promise it (NaN: none known): short stock is stretched to last
# until then instead of `low_cover_days`
DELIVERY_COLUMN = "delivery_days"
TARGET_GRID = 121  # prices tried between floor and ceiling for an item with curvature
SHELF_ITERATIONS = 60


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
    states: pd.DataFrame | dict[str, np.ndarray],
    settings: PricingSettings,
    currency: str = "RM",
    period: str = "day",
) -> pd.DataFrame:
    """Prices for every row of `states` (columns ITEM_STATE_COLUMNS), as a DataFrame."""
    return pd.DataFrame(decide_arrays(states, settings, currency, period))


@dataclass
class _Items:
    """The policy's inputs as float arrays, an unknown cost replaced by the assumed one."""

    item_id: np.ndarray
    p0: np.ndarray
    list_price: np.ndarray
    cost: np.ndarray
    cost_assumed: np.ndarray
    elasticity: np.ndarray
    low_e: np.ndarray
    high_e: np.ndarray
    stock: np.ndarray
    d0: np.ndarray
    evidence: np.ndarray
    demand_change: np.ndarray
    shelf: np.ndarray
    cross: np.ndarray
    cross_low: np.ndarray
    cross_high: np.ndarray
    observed_low: np.ndarray
    observed_high: np.ndarray
    curvature: np.ndarray
    reference: np.ndarray  # where the elasticity was measured (today's price if not given)
    semi_log: np.ndarray  # True: D0 exp(e (p - p0) / reference), e the elasticity at the reference
    delivery_days: np.ndarray  # until the next delivery (NaN: unknown)

    def demand(self, price: np.ndarray) -> np.ndarray:
        """D0 (p / p0) ** e (semi-log: D0 exp(e (p - p0) / reference)), times
        exp(k (L(p)^2 - L(p0)^2)) with L = log(p / reference) where demand has a curvature k."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            bend = self.curvature * (
                np.log(price / self.reference) ** 2 - np.log(self.p0 / self.reference) ** 2
            )
            move = np.where(
                self.semi_log,
                np.exp(self.elasticity * (price - self.p0) / self.reference),
                (price / self.p0) ** self.elasticity,
            )
            return self.d0 * move * np.exp(np.where(self.curvature != 0, bend, 0.0))


def _items(states: pd.DataFrame | dict[str, np.ndarray], g: Guardrails) -> _Items:
    s = {name: np.asarray(states[name]) for name in ITEM_STATE_COLUMNS}
    n = len(s["item_id"])
    list_price = s["list_price"].astype(float)
    cost = s["unit_cost"].astype(float)
    has_cross = all(name in states for name in CROSS_COLUMNS)
    observed = [
        np.asarray(states[name], float) if name in states else np.full(n, np.nan) for name in OBSERVED_COLUMNS
    ]
    curved = all(name in states for name in CURVE_COLUMNS)
    shaped = all(name in states for name in SHAPE_COLUMNS)
    p0 = s["current_price"].astype(float)
    cross = np.nan_to_num(np.asarray(states["cross_elasticity"], float)) if has_cross else np.zeros(n)
    cross_interval = [
        np.nan_to_num(np.asarray(states[name], float)) if has_cross and name in states else cross
        for name in CROSS_INTERVAL_COLUMNS
    ]
    return _Items(
        item_id=s["item_id"],
        p0=p0,
        list_price=list_price,
        cost=np.where(np.isnan(cost), list_price * g.default_cost_share, cost),
        cost_assumed=np.isnan(cost),
        elasticity=s["elasticity"].astype(float),
        low_e=s["low_90"].astype(float),
        high_e=s["high_90"].astype(float),
        stock=s["stock"].astype(float),
        d0=s["daily_units"].astype(float),
        evidence=s["item_evidence"].astype(bool),
        demand_change=s["demand_change"].astype(float),
        shelf=np.asarray(states["shelf"]).astype(np.int64) if has_cross else np.full(n, -1),
        cross=cross,
        cross_low=cross_interval[0],
        cross_high=cross_interval[1],
        observed_low=observed[0],
        observed_high=observed[1],
        curvature=np.nan_to_num(np.asarray(states["curvature"], float)) if curved else np.zeros(n),
        reference=np.asarray(states["reference_price"], float) if "reference_price" in states else p0,
        semi_log=np.asarray(states["semi_log"], bool) if shaped else np.zeros(n, bool),
        delivery_days=np.asarray(states[DELIVERY_COLUMN], float)
        if DELIVERY_COLUMN in states
        else np.full(n, np.nan),
    )


def _bounds(items: _Items, g: Guardrails) -> tuple[np.ndarray, np.ndarray]:
    """(floor, ceiling): cost + margin, list x ceiling multiple; cost above list: the
    floor wins (never below cost + margin), up to its first ending."""
    floor = items.cost * (1 + g.min_margin)
    first_ending = np.where(
        np.floor(floor) + g.ending >= floor, np.floor(floor) + g.ending, np.floor(floor) + 1 + g.ending
    )
    ceiling = np.where(
        floor > items.list_price * g.ceiling_multiple,
        np.where(floor >= 1, first_ending, floor),
        items.list_price * g.ceiling_multiple,
    )
    return floor, ceiling


def own_target(items: _Items, floor: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    """The profit-maximizing price of each item alone: cost e / (1 + e) at a constant
    elasticity, cost - reference / e with semi-log demand (e at the reference price), the best of
    a grid of prices where demand has a curvature."""
    elastic = items.elasticity < -1
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(elastic, items.cost * items.elasticity / (1 + items.elasticity), ceiling)
        semi_log = items.semi_log & (items.elasticity < 0)
        target = np.where(semi_log, items.cost - items.reference / items.elasticity, target)
    target = np.clip(target, floor, ceiling)
    curved = np.flatnonzero((items.curvature != 0) & (items.d0 > 0) & (ceiling > floor))
    if len(curved):
        target[curved] = _grid_target(items, curved, floor[curved], ceiling[curved])
    return target


def _grid_target(items: _Items, at: np.ndarray, floor: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    steps = np.linspace(0.0, 1.0, TARGET_GRID)[None, :]
    prices = floor[:, None] * (ceiling / floor)[:, None] ** steps  # items x grid, log-spaced
    e, k = items.elasticity[at][:, None], items.curvature[at][:, None]
    log_move = np.log(prices / items.reference[at][:, None])
    price_term = np.where(items.semi_log[at][:, None], prices / items.reference[at][:, None] - 1, log_move)
    log_demand = e * price_term + k * log_move**2  # up to a constant per item
    profit = (prices - items.cost[at][:, None]) * np.exp(log_demand - log_demand.max(axis=1, keepdims=True))
    return prices[np.arange(len(at)), profit.argmax(axis=1)]


def shelf_target(items: _Items, alone: np.ndarray, floor: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    """The prices that maximize each shelf's profit together (items alone keep `alone`).

    Demand of j: D_j(p) = D0_j (p_j/p0_j)^e_j prod_{k != j} (p_k/p0_k)^x_j. Setting the
    derivative of the shelf's profit in p_k to zero gives
    p_k = (c_k e_k D_k - S_k) / ((1 + e_k) D_k), S_k = sum_{j != k} (p_j - c_j) D_j x_j,
    iterated (damped) from the items' own targets, within the bounds. With semi-log own
    demand (D0_j exp(e_j (p_j - p0_j) / r_j)): p_k = c_k - r_k / e_k - r_k S_k / (e_k D_k p_k)."""
    coupled = _coupled(items, items.cross != 0)
    if not coupled.any():
        return alone
    shelf = np.where(coupled, items.shelf, 0)
    price = alone.copy()
    for _ in range(SHELF_ITERATIONS):
        demand = _shelf_demand(items, price, shelf, coupled)
        margin = np.where(coupled, (price - items.cost) * demand * items.cross, 0.0)
        others = np.bincount(shelf, weights=margin, minlength=shelf.max() + 1)[shelf] - margin
        with np.errstate(divide="ignore", invalid="ignore"):
            best = np.where(
                items.semi_log,
                items.cost
                - items.reference / items.elasticity
                - items.reference * others / (items.elasticity * demand * price),
                (items.cost * items.elasticity * demand - others) / ((1 + items.elasticity) * demand),
            )
        best = np.clip(np.where(coupled & np.isfinite(best), best, alone), floor, ceiling)
        step = best - price
        price = price + 0.5 * step
        if np.abs(step).max(initial=0) < 1e-4:
            break
    return np.where(coupled, price, alone)


def _coupled(items: _Items, has_effect: np.ndarray) -> np.ndarray:
    """The items a shelf prices together: on a shelf, with a shelf effect (`has_effect`),
    elastic enough to have a best price of their own and with demand."""
    return (
        (items.shelf >= 0)
        & has_effect
        & np.where(items.semi_log, items.elasticity < 0, items.elasticity < -1)
        & (items.d0 > 0)
    )


def cautious_target(
    items: _Items, point: np.ndarray, floor: np.ndarray, ceiling: np.ndarray, settings: PricingSettings
) -> np.ndarray:
    """The best price in the worst case of the 90% intervals (see step 2): a cut priced
    at the least elastic end, a rise at the most elastic end (on a shelf, with the shelf
    effect, at the joint elasticity's end: `_worst_case`), else the list price. With
    point intervals (the truth) it is the point target."""
    if not settings.uncertainty.cautious_target:
        return point
    least, most = _worst_case(items, up=True), _worst_case(items, up=False)
    cut = shelf_target(least, own_target(least, floor, ceiling), floor, ceiling)
    rise = shelf_target(most, own_target(most, floor, ceiling), floor, ceiling)
    stay = np.clip(items.list_price, floor, ceiling)
    return np.where(cut < stay, cut, np.where(rise > stay, rise, stay))


def _worst_case(items: _Items, up: bool) -> _Items:
    """The items at the worst case for a cut (`up`: less elastic, more taken from the
    shelf) or a rise, from the 90% intervals of the own elasticity and the shelf effect.

    A shelf's target moves its items together, so what decides it is the joint elasticity
    e + m x (m the other items priced with it). With the two estimates taken as independent
    (the item's own fit, its category's shelf effect), the ellipse through both intervals'
    ends touches the 90% end of e + m x at e + d_e |d_e| / h, x + d_x m |d_x| / h: d_e, d_x
    the signed distances to the intervals' ends on the move's side, h = sqrt(d_e^2 +
    (m d_x)^2). Both at their own ends at once, as before, is the joint elasticity's end
    at z = 2.33 when |d_e| = m |d_x| (a 98% interval's end, not a 90% one). An item alone on
    its shelf, or without a shelf effect, gets its own interval's end. The distances are
    signed: an end on the wrong side of its estimate (a shelf effect the test left out, at
    0, whose interval excludes 0) is moved towards, as each end was before, not mirrored."""
    end_e = items.high_e if up else items.low_e
    end_x = items.cross_high if up else items.cross_low
    to_e = np.where(np.isfinite(end_e), end_e - items.elasticity, 0.0)
    to_x = end_x - items.cross
    has_effect = (items.cross != 0) | (items.cross_low != 0) | (items.cross_high != 0)
    moving = _coupled(items, has_effect)
    shelf = np.where(moving, items.shelf, 0)
    counted = np.bincount(shelf, weights=moving.astype(float))[shelf] - 1
    others = np.where(moving, counted, 0.0)
    joint = np.hypot(to_e, others * to_x)
    together = (others > 0) & (joint > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share_e = np.where(together, np.abs(to_e) / joint, 1.0)
        share_x = np.where(together, others * np.abs(to_x) / joint, 1.0)
    return replace(items, elasticity=items.elasticity + to_e * share_e, cross=items.cross + to_x * share_x)


def _shelf_demand(items: _Items, price: np.ndarray, shelf: np.ndarray, coupled: np.ndarray) -> np.ndarray:
    """Demand at `price` for every item, with the other shelf items' prices in it."""
    log_move = np.where(coupled, np.log(price / items.p0), 0.0)
    others = np.bincount(shelf, weights=log_move, minlength=shelf.max() + 1)[shelf] - log_move
    with np.errstate(over="ignore"):
        return items.demand(price) * np.exp(items.cross * others)


@dataclass
class _Stock:
    short: np.ndarray
    long: np.ndarray
    out: np.ndarray
    known: np.ndarray


def inventory_target(
    items: _Items, target: np.ndarray, floor: np.ndarray, ceiling: np.ndarray, settings: PricingSettings
) -> tuple[np.ndarray, _Stock]:
    """Stretch short stock, move long stock, hold an item that is out."""
    inv = settings.inventory
    # stock short of lasting until the next delivery is stretched to it where the date is
    # known; otherwise to `low_cover_days`
    low_cover = np.where(
        np.isfinite(items.delivery_days),
        np.minimum(items.delivery_days, inv.high_cover_days),
        inv.low_cover_days,
    )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cover_at_target = items.stock / items.demand(target)
        stretch = items.p0 * (items.stock / (items.d0 * low_cover)) ** (1 / items.elasticity)
        clear = items.p0 * (items.stock / (items.d0 * inv.high_cover_days)) ** (1 / items.elasticity)
    curved = (items.curvature != 0) | items.semi_log  # no closed form: a grid
    if curved.any():
        stretch = np.where(curved, _price_for_cover(items, low_cover, floor, ceiling, lowest=True), stretch)
        clear = np.where(
            curved, _price_for_cover(items, inv.high_cover_days, floor, ceiling, lowest=False), clear
        )
    known = ~np.isnan(items.stock) & (items.d0 > 0) & (items.stock > 0)
    short = known & (cover_at_target < low_cover)
    long = known & (cover_at_target > inv.high_cover_days)
    target = np.where(short, np.clip(np.maximum(target, stretch), floor, ceiling), target)
    target = np.where(long, np.clip(np.minimum(target, clear), floor, ceiling), target)
    out = ~np.isnan(items.stock) & (items.stock <= 0)
    target = np.where(out, np.clip(items.p0, floor, ceiling), target)
    return target, _Stock(short, long, out, known)


def _price_for_cover(
    items: _Items, days: float | np.ndarray, floor: np.ndarray, ceiling: np.ndarray, lowest: bool
) -> np.ndarray:
    """Where demand bends, the lowest price at which the stock lasts `days` (or the highest
    at which it moves within `days`), from a grid between floor and ceiling."""
    found = np.where(lowest, ceiling, floor).astype(float)
    grid = np.linspace(0.0, 1.0, TARGET_GRID)
    for step in grid[::-1] if lowest else grid:
        price = floor * (ceiling / floor) ** step
        with np.errstate(divide="ignore", invalid="ignore"):
            lasts = items.stock / items.demand(price) >= days
        found = np.where(lasts if lowest else ~lasts, price, found)
    return found


def within_observed(items: _Items, target: np.ndarray, settings: PricingSettings) -> np.ndarray:
    """The target kept within `max_beyond_observed` of the prices the item sold at."""
    margin = settings.uncertainty.max_beyond_observed
    low = np.where(np.isfinite(items.observed_low), items.observed_low * (1 - margin), -np.inf)
    high = np.where(np.isfinite(items.observed_high), items.observed_high * (1 + margin), np.inf)
    return np.clip(target, low, np.maximum(low, high))


def move_share(items: _Items, settings: PricingSettings) -> np.ndarray:
    """How far to move towards the target: less while the elasticity is uncertain."""
    u = settings.uncertainty
    width = items.high_e - items.low_e
    share = np.minimum(1.0, u.full_move_width / np.maximum(width, 1e-9))
    return np.where(items.evidence, share, np.minimum(share, u.category_evidence_move))


def guardrailed(
    wanted: np.ndarray, p0: np.ndarray, floor: np.ndarray, ceiling: np.ndarray, g: Guardrails
) -> np.ndarray:
    """The period limit, then the absolute bounds (which win), then the price ending."""
    cap_low, cap_high = p0 * (1 - g.max_daily_change), p0 * (1 + g.max_daily_change)
    price = np.clip(np.clip(wanted, cap_low, cap_high), floor, ceiling)
    allowed_low = np.maximum(floor, np.minimum(cap_low, price))
    allowed_high = np.minimum(ceiling, np.maximum(cap_high, price))
    # held at the floor: rounding up to the next ending is fine, rounding down is not
    allowed_high = np.where(price <= floor + 1e-9, np.minimum(ceiling, floor + 1.0), allowed_high)
    price = apply_ending(price, allowed_low, allowed_high, g.ending)
    return np.maximum(price, np.ceil(floor * 100 - 1e-6) / 100)


def price_bounds(
    states: pd.DataFrame | dict[str, np.ndarray], settings: PricingSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(floor, ceiling) of each item under the guardrails."""
    return _bounds(_items(states, settings.guardrails), settings.guardrails)


def profit_target(states: pd.DataFrame | dict[str, np.ndarray], settings: PricingSettings) -> np.ndarray:
    """The profit-maximizing price of each item (with its shelf, where cross effects are
    given) within the bounds: step 1 of the policy alone."""
    items = _items(states, settings.guardrails)
    floor, ceiling = _bounds(items, settings.guardrails)
    return shelf_target(items, own_target(items, floor, ceiling), floor, ceiling)


def decide_arrays(
    states: pd.DataFrame | dict[str, np.ndarray],
    settings: PricingSettings,
    currency: str = "RM",
    period: str = "day",
    reasons: bool = True,
) -> dict[str, np.ndarray]:
    """The same, on plain arrays (what the service calls for a few items: no DataFrame cost);
    `reasons=False` leaves the reasons out (the simulator decides thousands of times)."""
    g = settings.guardrails
    items = _items(states, g)
    floor, ceiling = _bounds(items, g)
    alone = own_target(items, floor, ceiling)
    point = shelf_target(items, alone, floor, ceiling)
    best = cautious_target(items, point, floor, ceiling, settings)
    trusted = np.clip(within_observed(items, best, settings), floor, ceiling)
    stocked, stock = inventory_target(items, trusted, floor, ceiling, settings)
    # stretching or clearing stock prices on the same elasticity: near where it was measured
    target = np.where(stock.out, stocked, np.clip(within_observed(items, stocked, settings), floor, ceiling))
    share = move_share(items, settings)
    wanted = items.p0 * (target / items.p0) ** share
    price = guardrailed(wanted, items.p0, floor, ceiling, g)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cover = np.where(stock.known, items.stock / items.demand(price), np.nan)
    result = {
        "item_id": items.item_id,
        "price": price,
        "previous_price": items.p0,
        "target_price": np.round(target, 2),
        "change": np.round(price / items.p0 - 1, 4),
        "elasticity": np.round(items.elasticity, 3),
        "low_90": np.round(items.low_e, 3),
        "high_90": np.round(items.high_e, 3),
        "stock_cover_days": np.round(cover, 1),
    }
    if not reasons:
        return result
    within_cap = np.clip(wanted, items.p0 * (1 - g.max_daily_change), items.p0 * (1 + g.max_daily_change))
    facts = _Facts(
        capped=np.abs(within_cap - wanted) > 1e-9,
        at_floor=within_cap < floor + 1e-9,
        at_ceiling=within_cap > ceiling - 1e-9,
        share=share,
        cost_above_list=floor > items.list_price,
        alone=np.round(alone, 2),
        point=np.round(point, 2),
        cautious=np.abs(best - point) >= 0.005,
        stock=stock,
        untrusted=np.abs(trusted - best) > 0.005,
    )
    context = _Context(currency, period, g)
    result["reason"] = np.array(
        [_reason(i, result, items, facts, context) for i in range(len(price))], dtype=object
    )
    return result


@dataclass
class _Facts:
    """What the reason of each item reports, beside the result."""

    capped: np.ndarray
    at_floor: np.ndarray
    at_ceiling: np.ndarray
    share: np.ndarray
    cost_above_list: np.ndarray
    alone: np.ndarray
    point: np.ndarray  # the best price at the elasticity's estimate (before caution)
    cautious: np.ndarray  # the interval's cautious end moved the best price
    stock: _Stock
    untrusted: np.ndarray  # the best price lay beyond the prices the item sold at


@dataclass(frozen=True)
class _Context:
    currency: str
    period: str
    guardrails: Guardrails


def _money(currency: str, amount: float) -> str:
    return f"{currency}{amount:,.2f}" if len(currency) <= 2 else f"{currency} {amount:,.2f}"


def _reason(i: int, result: dict[str, np.ndarray], items: _Items, facts: _Facts, context: _Context) -> str:
    parts = [_evidence_part(i, result, items), *_signal_parts(i, result, items, facts, context)]
    change = result["change"][i]
    move = "no change" if abs(change) < 5e-4 else f"{change:+.0%}"
    limits = _limit_parts(i, change, items, facts, context)
    return ", ".join(parts) + f": {move}" + (f", {', '.join(limits)}" if limits else "")


def _evidence_part(i: int, result: dict[str, np.ndarray], items: _Items) -> str:
    elasticity, low, high = result["elasticity"][i], result["low_90"][i], result["high_90"][i]
    shape = (
        f" at {items.reference[i]:.2f}, growing with the price (semi-log demand)" if items.semi_log[i] else ""
    )
    if items.evidence[i]:
        return f"elasticity {elasticity:.1f}{shape} (90%: {low:.1f} to {high:.1f})"
    return f"elasticity {elasticity:.1f}{shape} from its category (too little price history of its own)"


def _signal_parts(
    i: int, result: dict[str, np.ndarray], items: _Items, facts: _Facts, context: _Context
) -> list[str]:
    parts = []
    change, stock = items.demand_change[i], facts.stock
    if not np.isnan(change) and abs(change) >= 0.15:
        parts.append(f"demand {'up' if change > 0 else 'down'} {abs(change):.0%} this week")
    cover = result["stock_cover_days"][i]
    if stock.out[i]:
        parts.append("out of stock: price held")
    elif stock.short[i]:
        delivery = items.delivery_days[i]
        unit = "days" if context.period == "day" else f"{context.period}s"
        due = f" (the next delivery is due in {delivery:.0f} {unit})" if np.isfinite(delivery) else ""
        parts.append(f"{cover:.0f} days of stock left{due}")
    elif stock.long[i]:
        parts.append(f"{cover:.0f} days of stock on hand")
    if items.cost_assumed[i]:
        share = context.guardrails.default_cost_share
        parts.append(f"cost unknown: assumed {share:.0%} of list price (the configured default_cost_share)")
    if stock.out[i]:
        return parts
    if items.elasticity[i] >= (0 if items.semi_log[i] else -1):
        parts.append("demand barely reacts to price")
        return parts
    return [*parts, *_target_parts(i, result, items, facts, context)]


def _target_parts(
    i: int, result: dict[str, np.ndarray], items: _Items, facts: _Facts, context: _Context
) -> list[str]:
    target = result["target_price"][i]
    parts = [f"best price {_money(context.currency, target)}"]
    if facts.cautious[i]:
        parts.append(
            f"{_money(context.currency, facts.point[i])} at the estimate: a move is priced at the"
            " interval's cautious end"
        )
    if facts.untrusted[i]:
        low, high = items.observed_low[i], items.observed_high[i]
        parts.append(
            f"kept near the prices it sold at ({_money(context.currency, low)} to {_money(context.currency, high)})"
        )
    if abs(target - facts.alone[i]) >= 0.005 and items.cross[i] != 0:
        parts.append(
            f"{_money(context.currency, facts.alone[i])} alone: a cut takes sales from the other items on its shelf"
        )
    return parts


def _limit_parts(i: int, change: float, items: _Items, facts: _Facts, context: _Context) -> list[str]:
    g = context.guardrails
    limits = []
    if facts.capped[i] and abs(change) > 5e-4 and not facts.at_floor[i]:
        limits.append(
            f"capped at the {g.max_daily_change:.0%} {PERIOD_WORDS.get(context.period, 'daily')} limit"
        )
    if facts.share[i] < 0.999 and not facts.stock.out[i]:
        limits.append(f"moving {facts.share[i]:.0%} of the way while the elasticity is uncertain")
    if facts.at_floor[i]:
        limits.append(
            f"held at cost + {g.min_margin:.0%} margin"
            + (" (cost is above list price)" if facts.cost_above_list[i] else "")
        )
    if facts.at_ceiling[i]:
        limits.append(f"at the ceiling ({g.ceiling_multiple:g}x list)")
    return limits


PERIOD_WORDS = {"day": "daily", "week": "weekly"}
