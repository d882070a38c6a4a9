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


class ShopDynamics:
    """True demand plus the inventory state it runs against."""

    def __init__(
        self,
        shop: ShopTruth,
        items: ItemTruth,
        stock: np.ndarray,
        pending: list[tuple[int, int, int]],
    ):
        self.shop = shop
        self.items = items
        self.stock = stock.astype(np.int64).copy()
        # deliveries on their way: arrival day index, item index, quantity
        entries = np.asarray(pending, dtype=np.int64).reshape(-1, 3)
        self.pending_day, self.pending_item, self.pending_quantity = entries.T.copy()
        self.start = pd.Timestamp(shop.start)

    @property
    def n_items(self) -> int:
        return len(self.items.view_share)

    def dates(self, first_day: int, days: int) -> pd.DatetimeIndex:
        return pd.date_range(self.start + pd.Timedelta(days=first_day), periods=days, freq="D")

    def launched(self, day: int) -> np.ndarray:
        return self.items.launch_day <= day

    def expected_views(self, day: int, promo: np.ndarray) -> np.ndarray:
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
        return traffic * share * np.where(promo, self.shop.promo_view_boost, 1.0)

    def purchase_probability(self, prices: np.ndarray) -> np.ndarray:
        ratio = np.asarray(prices, float) / self.items.ref_price
        return np.minimum(MAX_PURCHASE_PROBABILITY, self.items.conversion * ratio**self.items.elasticity)

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
        late = rng.random(len(need)) < self.shop.late_delivery_probability
        lead = np.where(late, self.items.lead_days[need] * 5 // 2, self.items.lead_days[need])
        self.pending_day = np.concatenate([self.pending_day, day + 1 + lead.astype(np.int64)])
        self.pending_item = np.concatenate([self.pending_item, need.astype(np.int64)])
        self.pending_quantity = np.concatenate(
            [self.pending_quantity, self.items.order_quantity[need].astype(np.int64)]
        )

    def _keep_pending(self, keep: np.ndarray) -> None:
        self.pending_day = self.pending_day[keep]
        self.pending_item = self.pending_item[keep]
        self.pending_quantity = self.pending_quantity[keep]

    # -- ground truth files ------------------------------------------------------------

    def save(self, directory: Path, item_ids: pd.Series, day: int) -> None:
        """Write the truths and the inventory state at the start of `day`."""
        directory.mkdir(parents=True, exist_ok=True)
        table = pd.DataFrame({name: value for name, value in asdict(self.items).items()})
        table.insert(0, "item_id", item_ids.to_numpy())
        table["stock"] = self.stock
        table.to_parquet(directory / "items.parquet", index=False)
        state = {
            "shop": asdict(self.shop),
            "next_day": day,
            "pending": np.column_stack([self.pending_day, self.pending_item, self.pending_quantity]).tolist(),
            "note": "True demand of the demo shop. Read by the simulator and quality reports; never by training.",
        }
        (directory / "shop.json").write_text(json.dumps(state, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> tuple[ShopDynamics, pd.Series, int]:
        """The dynamics as saved, the item ids in their order, and the next day index."""
        table = pd.read_parquet(directory / "items.parquet")
        state = json.loads((directory / "shop.json").read_text(encoding="utf-8"))
        fields = ItemTruth.__dataclass_fields__
        items = ItemTruth(**{name: table[name].to_numpy() for name in fields})
        dynamics = cls(
            ShopTruth(**state["shop"]),
            items,
            table["stock"].to_numpy(),
            [tuple(entry) for entry in state["pending"]],
        )
        return dynamics, table["item_id"], int(state["next_day"])
