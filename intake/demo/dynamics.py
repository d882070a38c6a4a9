"""The demo shop's true demand and stock, one day at a time.

This is the ground truth the models are judged against. The generator runs it over the
history with the shop's historical prices; the pricing simulator runs it forward under a
pricing policy. Per item and day:

    views    ~ Poisson(traffic(day) * share(item, day) * promo_boost ** promo)
    buyers   ~ Binomial(views, min(cap, conversion * (price / ref_price) ** elasticity))
    units    = buyers + Poisson(buyers * extra_units), sold only while stock lasts

so expected units are exactly proportional to price ** elasticity: the elasticity is the
true, constant price elasticity of demand for the item. Stock is replenished by a fixed
reorder-point policy with supplier lead times (and the occasional late delivery), so
items run out at peaks and demand on those days is censored.

That is the default demand family, the one the pricing model fits. Others, chosen by
`demand_family`, are there to find out what the model gets wrong when the world is not
what it assumes (the purchase probability's price factor changes, the rest stays):

- `linear`: conversion * (1 + elasticity * (price / ref - 1)), zero at and above the
  choke price ref * (1 - 1 / elasticity);
- `reference_price`: customers compare the price with the one they are used to, which
  follows the prices charged (it closes `reference_memory` of the gap each day): an extra
  factor (price / reference) ** reference_effect, so a cut's boost fades as the new
  price becomes the usual one, and a rise hurts most at first;
- `substitution`: the other items of the category are substitutes: an extra factor
  exp(substitution * mean log(price / ref) of the category's other items), so a cut on
  one item takes sales from its category.

In every family `elasticity` is the true own-price elasticity at the reference price with
the other prices fixed and, for reference prices, once customers are used to the price
(the long-run effect of a permanent price change).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from intake.demo.calendar import season_factor, weekday_factor

MAX_PURCHASE_PROBABILITY = 0.9


@dataclass(frozen=True)
class ShopTruth:
    """Shop-wide constants of the true demand."""

    start: str  # first day of the history, ISO date
    traffic_per_day: float  # item views per ordinary day at the start
    growth_per_year: float
    promo_view_boost: float
    anonymous_share: float
    cart_to_purchase: float
    late_delivery_probability: float
    demand_family: str = "constant_elasticity"
    reference_memory: float = 0.15
    reference_effect: float = -1.0
    substitution: float = 1.0


@dataclass(frozen=True)
class ItemTruth:
    """Per-item constants of the true demand and of the stock policy (arrays, item order)."""

    view_share: np.ndarray
    trend_per_year: np.ndarray
    launch_day: np.ndarray
    conversion: np.ndarray
    elasticity: np.ndarray
    ref_price: np.ndarray
    extra_units: np.ndarray
    unit_cost: np.ndarray
    lead_days: np.ndarray
    reorder_point: np.ndarray
    order_quantity: np.ndarray
    category: np.ndarray  # the category's index (the substitutes of the substitution family)


@dataclass
class DayOutcome:
    views: np.ndarray
    buyers: np.ndarray  # visitors who wanted to buy
    sold_buyers: np.ndarray  # of whom were served before stock ran out
    units: np.ndarray  # units sold
    wanted_units: np.ndarray  # units wanted (uncensored)
    carts_only: np.ndarray  # added to cart without buying
    stock_start: np.ndarray
    stocked_out: np.ndarray  # demand exceeded the stock at the start of the day


@dataclass(frozen=True)
class DayDraws:
    """One simulated day's random numbers: views per item, and per view its item, a
    uniform that decides whether it buys and the extra units it takes if it does; per
    item a uniform that decides whether an order placed that day arrives late."""

    views: np.ndarray
    item: np.ndarray
    buy: np.ndarray
    extra: np.ndarray
    late: np.ndarray


class ShopDynamics:
    """True demand plus the inventory state it runs against."""

    def __init__(
        self,
        shop: ShopTruth,
        items: ItemTruth,
        stock: np.ndarray,
        pending: list[tuple[int, int, int]],
        reference: np.ndarray | None = None,
        expected: np.ndarray | None = None,
    ):
        self.shop = shop
        self.items = items
        self.stock = stock.astype(np.int64).copy()
        # deliveries on their way: arrival day index, item index, quantity
        entries = np.asarray(pending, dtype=np.int64).reshape(-1, 3)
        self.pending_day, self.pending_item, self.pending_quantity = entries.T.copy()
        # the day each delivery on its way was promised for (a late one arrives after it):
        # what the shop's open purchase orders say
        self.pending_expected = self.pending_day.copy() if expected is None else np.asarray(expected).copy()
        self.start = pd.Timestamp(shop.start)
        # the price customers are used to (the reference_price family's state)
        self.reference = np.asarray(items.ref_price, float).copy() if reference is None else reference.copy()
        # each day's expected views without promotion, by day: a pure function of the date
        # and the items, and the calendar's arithmetic costs milliseconds a call while the
        # simulator asks for the same day dozens of times (every policy, every stretch price)
        self._views_by_day: dict[int, np.ndarray] = {}

    def fresh(self) -> ShopDynamics:
        """The same truth and inventory state, to run forward separately (one per policy);
        it shares the day's views already worked out, which never change."""
        pending = list(zip(self.pending_day, self.pending_item, self.pending_quantity, strict=True))
        copy = ShopDynamics(self.shop, self.items, self.stock, pending, self.reference, self.pending_expected)
        copy._views_by_day = self._views_by_day
        return copy

    @property
    def n_items(self) -> int:
        return len(self.items.view_share)

    def dates(self, first_day: int, days: int) -> pd.DatetimeIndex:
        return pd.date_range(self.start + pd.Timedelta(days=first_day), periods=days, freq="D")

    def launched(self, day: int) -> np.ndarray:
        return self.items.launch_day <= day

    def expected_views(self, day: int, promo: np.ndarray) -> np.ndarray:
        views = self._views_by_day.get(day)
        if views is None:
            views = self._views_by_day[day] = self._expected_views(day)
        return views * np.where(promo, self.shop.promo_view_boost, 1.0)

    def _expected_views(self, day: int) -> np.ndarray:
        date = self.dates(day, 1)
        traffic = (
            self.shop.traffic_per_day
            * (1 + self.shop.growth_per_year) ** (day / 365)
            * season_factor(date)[0]
            * weekday_factor(date)[0]
        )
        weight = self.items.view_share * np.exp(self.items.trend_per_year * (day / 365 - 0.5))
        weight = np.where(self.launched(day), weight, 0.0)
        total = weight.sum()
        share = weight / total if total > 0 else weight
        views = traffic * share
        views.flags.writeable = False  # shared by every caller of the day
        return views

    def purchase_probability(self, prices: np.ndarray) -> np.ndarray:
        prices = np.asarray(prices, float)
        ratio = prices / self.items.ref_price
        family, e = self.shop.demand_family, self.items.elasticity
        factor = np.maximum(0.0, 1 + e * (ratio - 1)) if family == "linear" else ratio**e
        if family == "reference_price":
            factor = factor * (prices / self.reference) ** self.shop.reference_effect
        elif family == "substitution":
            factor = factor * np.exp(self.shop.substitution * self.peer_index(prices))
        return np.minimum(MAX_PURCHASE_PROBABILITY, self.items.conversion * factor)

    def peer_index(self, prices: np.ndarray) -> np.ndarray:
        """Mean log price relative to reference of the other items of each item's category."""
        log_ratio = np.log(np.asarray(prices, float) / self.items.ref_price)
        category = self.items.category.astype(np.int64)
        total = np.bincount(category, weights=log_ratio)[category] - log_ratio
        count = np.bincount(category)[category] - 1
        return np.where(count > 0, total / np.maximum(count, 1), 0.0)

    def remember(self, prices: np.ndarray) -> None:
        """Customers get used to the prices charged today (the reference_price family)."""
        if self.shop.demand_family == "reference_price":
            self.reference = self.reference + self.shop.reference_memory * (
                np.asarray(prices, float) - self.reference
            )

    def expected_units(self, day: int, prices: np.ndarray, promo: np.ndarray) -> np.ndarray:
        """Uncensored expected demand in units: what the oracle knows."""
        return (
            self.expected_views(day, promo) * self.purchase_probability(prices) * (1 + self.items.extra_units)
        )

    def step(self, day: int, prices: np.ndarray, promo: np.ndarray, rng: np.random.Generator) -> DayOutcome:
        self._receive(day)
        stock_start = self.stock.copy()
        views = rng.poisson(self.expected_views(day, promo))
        p_buy = self.purchase_probability(prices)
        buyers = rng.binomial(views, p_buy)
        wanted = buyers + rng.poisson(buyers * self.items.extra_units)
        enough = wanted <= stock_start
        units = np.where(enough, wanted, stock_start)
        sold_buyers = np.where(enough, buyers, np.minimum(buyers, stock_start))
        p_cart_only = np.clip(p_buy * (1 / self.shop.cart_to_purchase - 1) / (1 - p_buy), 0, 1)
        carts_only = rng.binomial(views - buyers, p_cart_only)
        self.stock = stock_start - units
        self._reorder(day, rng)
        self.remember(prices)
        return DayOutcome(
            views=views,
            buyers=buyers,
            sold_buyers=sold_buyers,
            units=units,
            wanted_units=wanted,
            carts_only=carts_only,
            stock_start=stock_start,
            stocked_out=~enough,
        )

    def step_drawn(self, day: int, prices: np.ndarray, draws: DayDraws) -> DayOutcome:
        """One day with the day's random numbers drawn beforehand, so that every pricing
        policy meets the same visitors: a view buys when its uniform is under the purchase
        probability at the price charged (fewer buy at a higher price, never others), and
        a buyer takes its drawn extra units. Used by the simulator; no promotions."""
        self._receive(day)
        stock_start = self.stock.copy()
        p_buy = self.purchase_probability(prices)
        buys = draws.buy < p_buy[draws.item]
        buyers = np.bincount(draws.item[buys], minlength=self.n_items)
        wanted = np.bincount(draws.item[buys], weights=1 + draws.extra[buys], minlength=self.n_items).astype(
            np.int64
        )
        enough = wanted <= stock_start
        units = np.where(enough, wanted, stock_start)
        self.stock = stock_start - units
        on_order = np.bincount(self.pending_item, weights=self.pending_quantity, minlength=self.n_items)
        need = np.flatnonzero((self.stock + on_order < self.items.reorder_point) & self.launched(day + 1))
        if len(need):
            self._place_orders(day, need, draws.late[need] < self.shop.late_delivery_probability)
        self.remember(prices)
        return DayOutcome(
            views=draws.views,
            buyers=buyers,
            sold_buyers=np.where(enough, buyers, np.minimum(buyers, stock_start)),
            units=units,
            wanted_units=wanted,
            carts_only=np.zeros(self.n_items, np.int64),
            stock_start=stock_start,
            stocked_out=~enough,
        )

    def draw_day(self, day: int, rng: np.random.Generator) -> DayDraws:
        """The random numbers of one simulated day (views at the day's traffic, no promotion)."""
        views = rng.poisson(self.expected_views(day, np.zeros(self.n_items, bool)))
        item = np.repeat(np.arange(self.n_items), views)
        return DayDraws(
            views=views,
            item=item,
            buy=rng.random(len(item)),
            extra=rng.poisson(self.items.extra_units[item]),
            late=rng.random(self.n_items),
        )

    def days_to_delivery(self, day: int, promised: bool = True) -> np.ndarray:
        """Per item, days from `day` until its next delivery on the way arrives (0: it arrives
        that morning): by the days they will really arrive, or by the promised days (what the
        shop's purchase orders say; NaN where none is on the way or the promised day has
        passed, as a shop cannot tell when a late delivery will come)."""
        arrival = np.full(self.n_items, np.inf)
        days = self.pending_expected if promised else self.pending_day
        due = days.astype(float) - day
        np.minimum.at(arrival, self.pending_item, due)
        # an overdue order (promised, not come): the shop cannot tell when stock arrives
        return np.where(np.isfinite(arrival) & (arrival >= 0), arrival, np.nan)

    def _receive(self, day: int) -> None:
        arrived = self.pending_day <= day
        if arrived.any():
            np.add.at(self.stock, self.pending_item[arrived], self.pending_quantity[arrived])
            self._keep_pending(~arrived)

    def _reorder(self, day: int, rng: np.random.Generator) -> None:
        on_order = np.bincount(self.pending_item, weights=self.pending_quantity, minlength=self.n_items)
        need = np.flatnonzero((self.stock + on_order < self.items.reorder_point) & self.launched(day + 1))
        if not len(need):
            return
        self._place_orders(day, need, rng.random(len(need)) < self.shop.late_delivery_probability)

    def _place_orders(self, day: int, need: np.ndarray, late: np.ndarray) -> None:
        lead = np.where(late, self.items.lead_days[need] * 5 // 2, self.items.lead_days[need])
        self.pending_day = np.concatenate([self.pending_day, day + 1 + lead.astype(np.int64)])
        self.pending_expected = np.concatenate(
            [self.pending_expected, day + 1 + self.items.lead_days[need].astype(np.int64)]
        )
        self.pending_item = np.concatenate([self.pending_item, need.astype(np.int64)])
        self.pending_quantity = np.concatenate(
            [self.pending_quantity, self.items.order_quantity[need].astype(np.int64)]
        )

    def _keep_pending(self, keep: np.ndarray) -> None:
        self.pending_day = self.pending_day[keep]
        self.pending_item = self.pending_item[keep]
        self.pending_quantity = self.pending_quantity[keep]
        self.pending_expected = self.pending_expected[keep]

    # -- ground truth files ------------------------------------------------------------

    def save(self, directory: Path, item_ids: pd.Series, day: int) -> None:
        """Write the truths and the inventory state at the start of `day`."""
        directory.mkdir(parents=True, exist_ok=True)
        table = pd.DataFrame({name: value for name, value in asdict(self.items).items()})
        table.insert(0, "item_id", item_ids.to_numpy())
        table["stock"] = self.stock
        table["reference_now"] = self.reference
        table.to_parquet(directory / "items.parquet", index=False)
        state = {
            "shop": asdict(self.shop),
            "next_day": day,
            "pending": np.column_stack([self.pending_day, self.pending_item, self.pending_quantity]).tolist(),
            "pending_expected": self.pending_expected.tolist(),
            "note": "True demand of the demo shop. Read by the simulator and quality reports; never by training.",
        }
        (directory / "shop.json").write_text(json.dumps(state, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> tuple[ShopDynamics, pd.Series, int]:
        """The dynamics as saved, the item ids in their order, and the next day index."""
        table = pd.read_parquet(directory / "items.parquet")
        state = json.loads((directory / "shop.json").read_text(encoding="utf-8"))
        if "category" not in table:  # ground truth written before the demand families
            table["category"] = 0
        fields = ItemTruth.__dataclass_fields__
        items = ItemTruth(**{name: table[name].to_numpy() for name in fields})
        reference = table["reference_now"].to_numpy(float) if "reference_now" in table else None
        dynamics = cls(
            ShopTruth(**state["shop"]),
            items,
            table["stock"].to_numpy(),
            [tuple(entry) for entry in state["pending"]],
            reference,
            np.asarray(state["pending_expected"], np.int64) if "pending_expected" in state else None,
        )
        return dynamics, table["item_id"], int(state["next_day"])
