"""From daily totals per item to the rows a shop records: events and order lines.

The day-by-day dynamics decide how many views, carts and sales each item gets; this
module decides who: each view goes to a customer whose taste segment likes the item (or
to an anonymous visitor), the cart and purchase follow the same visitor, and some sales
of complementary items (matching earrings, a chain for a pendant, a gift box) go to a
customer who recently bought the item they complete. Counts per item and day are never
changed here, so the true demand stays exactly what the dynamics drew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intake.demo.catalog import CATEGORY_NAMES, Catalog
from intake.demo.customers import Population

# journey kinds, from the least to the most committed
VIEW_ONLY, CART_ONLY, PURCHASE = 0, 1, 2

# Share of views per hour of the day (shop local time): lunch and evening peaks.
HOURLY = np.array(
    [
        1.2,
        0.8,
        0.5,
        0.3,
        0.3,
        0.4,
        0.8,
        1.5,
        2.5,
        3.5,
        4.0,
        4.5,
        5.5,
        5.5,
        4.5,
        4.0,
        4.0,
        4.5,
        5.0,
        6.0,
        7.5,
        8.0,
        6.5,
        3.5,
    ]
)
HOURLY = HOURLY / HOURLY.sum()

PAIRING_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Journeys:
    """One row per visitor's journey with an item on a day."""

    item: np.ndarray
    day: np.ndarray
    kind: np.ndarray
    units: np.ndarray  # units bought (purchase journeys), else 0
    customer: np.ndarray  # customer index, -1 for an anonymous visitor


def expand_day(
    views: np.ndarray,
    sold_buyers: np.ndarray,
    unsold_buyers: np.ndarray,
    carts_only: np.ndarray,
    units: np.ndarray,
    stock_start: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item, kind and units of every journey of one day."""
    # A buyer who found the item out of stock had it in the cart at best (if it was in
    # stock when the day began), otherwise only looked.
    failed_carts = np.where(stock_start > 0, unsold_buyers, 0)
    carts = carts_only + failed_carts
    view_only = views - sold_buyers - carts
    items = np.arange(len(views))
    item = np.concatenate(
        [np.repeat(items, sold_buyers), np.repeat(items, carts), np.repeat(items, view_only)]
    )
    kind = np.concatenate(
        [
            np.full(sold_buyers.sum(), PURCHASE),
            np.full(carts.sum(), CART_ONLY),
            np.full(view_only.sum(), VIEW_ONLY),
        ]
    ).astype(np.int8)
    bought = np.ones(sold_buyers.sum(), np.int64)
    extra = units - sold_buyers
    if extra.sum() > 0:
        # spread each item's extra units over its buyers at random
        first = np.concatenate([[0], np.cumsum(sold_buyers)[:-1]])
        owners = np.repeat(first, extra) + (rng.random(extra.sum()) * np.repeat(sold_buyers, extra)).astype(
            np.int64
        )
        bought += np.bincount(owners, minlength=len(bought))
    units_col = np.concatenate([bought, np.zeros(carts.sum() + view_only.sum(), np.int64)])
    return item, kind, units_col


def assign_visitors(
    item: np.ndarray,
    day: np.ndarray,
    affinity: np.ndarray,
    population: Population,
    anonymous_share: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A customer index per journey (-1 anonymous), drawn by taste and activity among the
    customers already active that day."""
    n_segments = affinity.shape[0]
    segment_weight = np.bincount(population.segment, weights=population.activity, minlength=n_segments)
    p_segment = affinity * segment_weight[:, None]
    p_segment = np.cumsum(p_segment / p_segment.sum(axis=0), axis=0)  # segments x items
    segment = (rng.random(len(item))[:, None] > p_segment[:, item].T).sum(axis=1).clip(max=n_segments - 1)
    customer = np.full(len(item), -1, np.int64)
    anonymous = rng.random(len(item)) < anonymous_share
    for s in range(n_segments):
        members = np.flatnonzero(population.segment == s)
        order = np.argsort(population.active_from_day[members], kind="stable")
        members = members[order]
        joined = population.active_from_day[members]
        cumulative = np.cumsum(population.activity[members])
        rows = np.flatnonzero((segment == s) & ~anonymous)
        eligible = np.searchsorted(joined, day[rows], side="right")
        has_any = eligible > 0
        rows, eligible = rows[has_any], eligible[has_any]
        target = rng.random(len(rows)) * cumulative[eligible - 1]
        picked = np.minimum(np.searchsorted(cumulative, target, side="right"), eligible - 1)
        customer[rows] = members[picked]
    return customer


def pair_complements(journeys: Journeys, catalog: Catalog, rng: np.random.Generator) -> np.ndarray:
    """Customers after giving part of the complementary sales to a customer who bought
    the item they complete within the last month (same day means same order)."""
    customer = journeys.customer.copy()
    category = catalog.category[journeys.item]
    is_cat = {name: category == CATEGORY_NAMES.index(name) for name in CATEGORY_NAMES}
    bought = (journeys.kind == PURCHASE) & (customer >= 0)
    necklace_or_pendant = bought & (is_cat["necklace"] | is_cat["pendant"])
    jewellery = bought & ~is_cat["gift box"] & ~is_cat["care kit"]
    matching = is_cat["earrings"] | is_cat["bracelet"] | is_cat["ring"]
    collection = catalog.collection[journeys.item]
    material = catalog.material[journeys.item]
    rules = [
        # (complement rows, anchor rows, key per row, probability of pairing)
        (
            bought & matching & (collection >= 0),
            necklace_or_pendant & (collection >= 0),
            collection,
            0.45,
        ),
        (bought & is_cat["chain"], necklace_or_pendant, material, 0.65),
        (bought & is_cat["gift box"], jewellery, np.zeros_like(material), 0.35),
    ]
    for complement, anchor, key, probability in rules:
        rows = np.flatnonzero(complement & (rng.random(len(customer)) < probability))
        anchors = np.flatnonzero(anchor)
        if not len(rows) or not len(anchors):
            continue
        span = int(journeys.day.max()) + PAIRING_WINDOW_DAYS + 2
        anchor_code = key[anchors].astype(np.int64) * span + journeys.day[anchors]
        order = np.argsort(anchor_code, kind="stable")
        anchors, anchor_code = anchors[order], anchor_code[order]
        code = key[rows].astype(np.int64) * span + journeys.day[rows]
        low = np.searchsorted(anchor_code, code - PAIRING_WINDOW_DAYS, side="left")
        high = np.searchsorted(anchor_code, code, side="right")
        found = high > low
        pick = low[found] + (rng.random(found.sum()) * (high[found] - low[found])).astype(np.int64)
        customer[rows[found]] = journeys.customer[anchors[pick]]
    return customer


def journey_times(
    day: np.ndarray, kind: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds after midnight of the view and of the add-to-cart."""
    n = len(day)
    hour = rng.choice(24, size=n, p=HOURLY)
    view = hour * 3600 + rng.integers(0, 3600, n)
    cart = view + rng.exponential(240, n).astype(np.int64) + 5
    view = np.minimum(view, 86_000)
    cart = np.where(kind >= CART_ONLY, np.minimum(cart, 86_200), -1)
    return view, cart
