"""The demo shop's price history: list-price rises, campaign promotions, markdowns of
slow movers and short price tests.

These are how real shops vary prices, and they are what makes elasticity identifiable.
They are also confounded the way real data is: promotions coincide with gift peaks and
markdowns hit items whose popularity is fading, so a model that ignores season and trend
gets the elasticity wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from intake.demo.calendar import promo_windows
from intake.demo.catalog import Catalog, shop_price
from storewise import columns as c


@dataclass(frozen=True)
class PricePath:
    price: np.ndarray  # items x days, the price charged
    promo: np.ndarray  # items x days, True on promotion days
    list_price: np.ndarray  # items x days, the list price in force


def make_price_path(catalog: Catalog, dates: pd.DatetimeIndex, rng: np.random.Generator) -> PricePath:
    n, days = catalog.size, len(dates)
    list_price = np.repeat(catalog.ref_price[:, None], days, axis=1)

    # List-price rises: a quarter of the items go up 5-10% once.
    rises = np.flatnonzero(rng.random(n) < 0.25)
    for i in rises:
        day = rng.integers(days // 6, days)
        list_price[i, day:] = shop_price(catalog.ref_price[i] * rng.uniform(1.05, 1.10))
    base = list_price.copy()

    # Markdowns: most fading items are cut 15-30% for good, part-way through the year.
    fading = np.flatnonzero((catalog.trend_per_year < -0.12) & (rng.random(n) < 0.7))
    for i in fading:
        day = rng.integers(int(days * 0.35), max(int(days * 0.85), int(days * 0.35) + 1))
        base[i, day:] = shop_price(base[i, day:] * (1 - rng.uniform(0.15, 0.30)))

    # Price tests: the shop tries most items a little above or below the base price for
    # two weeks at a time, a few times a year (what makes elasticities measurable).
    price = base.copy()
    tested = np.flatnonzero(rng.random(n) < 0.9)
    for i in tested:
        for _ in range(rng.integers(3, 7)):
            day = rng.integers(0, max(days - 14, 1))
            factor = rng.choice([0.80, 0.85, 0.90, 1.10, 1.15, 1.20])
            price[i, day : day + 14] = shop_price(base[i, day : day + 14] * factor)

    # Campaign promotions at the gift peaks.
    promo = np.zeros((n, days), bool)
    for window in promo_windows(dates[0], dates[-1]):
        first = max(int((window.start - dates[0]).days), 0)
        last = min(int((window.end - dates[0]).days), days - 1)
        if last < first:
            continue
        chosen = np.flatnonzero(rng.random(n) < window.share_of_items)
        steps = np.arange(0.10, window.max_discount + 1e-9, 0.05)
        discount = rng.choice(steps, len(chosen))
        promo_price = shop_price(base[chosen, first : last + 1] * (1 - discount[:, None]))
        price[chosen, first : last + 1] = promo_price
        promo[chosen, first : last + 1] = True

    price = np.maximum(price, 0.90)
    return PricePath(price=price, promo=promo, list_price=list_price)


def price_changes(
    path: PricePath, item_ids: pd.Series, dates: pd.DatetimeIndex, launch_day: np.ndarray
) -> pd.DataFrame:
    """The canonical price_history table: a row on the day an item goes on sale and on
    every change after."""
    changed = np.zeros_like(path.price, bool)
    changed[:, 1:] = (path.price[:, 1:] != path.price[:, :-1]) | (path.promo[:, 1:] != path.promo[:, :-1])
    changed[np.arange(len(launch_day)), launch_day] = True
    changed &= np.arange(len(dates))[None, :] >= launch_day[:, None]
    item_index, day_index = np.nonzero(changed)
    return pd.DataFrame(
        {
            c.ITEM_ID: item_ids.to_numpy()[item_index],
            c.DATE: dates[day_index].astype("datetime64[us]"),
            c.PRICE: path.price[item_index, day_index],
            c.PROMO: path.promo[item_index, day_index],
        }
    )
