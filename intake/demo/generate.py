"""`storewise data generate`: the embedded demo shop, deterministic for a seed.

Writes the canonical tables (customers, products, orders, events, price_history,
stock_history) and, beside them in `ground_truth/`, the true demand of every item (its
elasticity among it), which the simulator and quality reports read and training never does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intake.coerce import to_canonical_dtypes
from intake.demo.catalog import Catalog, make_catalog
from intake.demo.customers import Population, affinity, make_customers
from intake.demo.dynamics import DayOutcome, ItemTruth, ShopDynamics, ShopTruth
from intake.demo.journeys import (
    PURCHASE,
    Journeys,
    assign_visitors,
    expand_day,
    journey_times,
    pair_complements,
)
from intake.demo.prices import PricePath, make_price_path, price_changes
from intake.demo.settings import GeneratorSettings
from intake.schemas import SCHEMAS
from storewise import columns as c
from storewise.shop import ShopSettings

DEMO_TIMEZONE = "Asia/Kuala_Lumpur"
SEARCH_SHARE = 0.08
SAFETY_FACTOR = 1.8


@dataclass
class GeneratedShop:
    settings: ShopSettings
    tables: dict[str, pd.DataFrame]
    dynamics: ShopDynamics
    item_ids: pd.Series
    days: int


Progress = Callable[[int], None]


def generate_shop(options: GeneratorSettings, progress: Progress | None = None) -> GeneratedShop:
    options.validate()
    seeds = np.random.SeedSequence(options.seed).spawn(6)
    rng_catalog, rng_customers, rng_prices, rng_days, rng_people, rng_rows = (
        np.random.default_rng(s) for s in seeds
    )

    end = pd.Timestamp(options.end_date)
    start = end - pd.Timedelta(days=options.days - 1)
    dates = pd.date_range(start, end, freq="D")
    catalog = make_catalog(options.products, options.days, rng_catalog)
    population = make_customers(options.customers, start, options.days, rng_customers)
    prices = make_price_path(catalog, dates, rng_prices)
    dynamics = _initial_dynamics(options, catalog, start, rng_days)

    outcomes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    stock_start = np.zeros((catalog.size, options.days), np.int64)
    for day in range(options.days):
        outcome = dynamics.step(day, prices.price[:, day], prices.promo[:, day], rng_days)
        stock_start[:, day] = outcome.stock_start
        outcomes.append(_journeys_of_day(outcome, rng_rows))
        if progress is not None:
            progress(1)

    item = np.concatenate([o[0] for o in outcomes])
    kind = np.concatenate([o[1] for o in outcomes])
    units = np.concatenate([o[2] for o in outcomes])
    journey_day = np.repeat(np.arange(options.days), [len(o[0]) for o in outcomes])
    visitor = assign_visitors(
        item, journey_day, affinity(catalog), population, options.anonymous_share, rng_people
    )
    journeys = Journeys(item=item, day=journey_day, kind=kind, units=units, customer=visitor)
    journeys = Journeys(item, journey_day, kind, units, pair_complements(journeys, catalog, rng_people))

    ids = catalog.products[c.ITEM_ID]
    products = catalog.products.assign(**{c.STOCK: dynamics.stock})
    # the open purchase orders' promised day (a late delivery comes after it)
    due = dynamics.days_to_delivery(len(dates))
    products[c.NEXT_DELIVERY] = pd.Series(dates[-1] + pd.to_timedelta(1 + due, unit="D")).dt.date.astype(
        object
    )
    products[c.LIST_PRICE] = prices.list_price[:, -1]
    tables = {
        c.CUSTOMERS: population.customers,
        c.PRODUCTS: products,
        **_orders_and_events(journeys, catalog, population, prices, dates, rng_rows),
        c.PRICE_HISTORY: price_changes(prices, ids, dates, catalog.launch_day),
        c.STOCK_HISTORY: stock_changes(stock_start, ids, dates),
    }
    tables = {name: to_canonical_dtypes(table, SCHEMAS[name]) for name, table in tables.items()}
    settings = ShopSettings(
        name="Demo jewellery shop", currency="RM", timezone=DEMO_TIMEZONE, source="demo-generator"
    )
    return GeneratedShop(settings, tables, dynamics, ids, options.days)


def _initial_dynamics(
    options: GeneratorSettings, catalog: Catalog, start: pd.Timestamp, rng: np.random.Generator
) -> ShopDynamics:
    traffic = options.customers * options.views_per_customer_year / 365 / (1 - options.anonymous_share)
    base_units = traffic * catalog.view_share * catalog.conversion * (1 + catalog.extra_units)
    lead = rng.integers(5, 22, catalog.size)
    # The shop keeps safety stock for its peaks and campaigns, yet big ones still empty
    # the shelves of some items (about 2% of item-days out of stock, more on promotion).
    reorder_point = np.ceil(base_units * SAFETY_FACTOR * (lead + 7)).astype(np.int64) + 2
    order_quantity = np.maximum(np.ceil(base_units * rng.uniform(25, 50, catalog.size)), 3).astype(np.int64)
    items = ItemTruth(
        view_share=catalog.view_share,
        trend_per_year=catalog.trend_per_year,
        launch_day=catalog.launch_day,
        conversion=catalog.conversion,
        elasticity=catalog.elasticity,
        ref_price=catalog.ref_price,
        extra_units=catalog.extra_units,
        unit_cost=catalog.unit_cost,
        lead_days=lead,
        reorder_point=reorder_point,
        order_quantity=order_quantity,
        category=catalog.category,
    )
    shop = ShopTruth(
        start=start.date().isoformat(),
        traffic_per_day=traffic,
        growth_per_year=options.growth_per_year,
        promo_view_boost=options.promo_view_boost,
        anonymous_share=options.anonymous_share,
        cart_to_purchase=options.cart_to_purchase,
        late_delivery_probability=options.late_delivery_probability,
        demand_family=options.demand_family,
        reference_memory=options.reference_memory,
        reference_effect=options.reference_effect,
        substitution=options.substitution,
    )
    initial = np.where(catalog.launch_day == 0, order_quantity + reorder_point, 0)
    # items launched later arrive with their first delivery on launch day
    later = np.flatnonzero(catalog.launch_day > 0)
    pending = [(int(catalog.launch_day[i]), int(i), int(order_quantity[i] + reorder_point[i])) for i in later]
    return ShopDynamics(shop, items, initial, pending)


def _journeys_of_day(
    outcome: DayOutcome, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return expand_day(
        outcome.views,
        outcome.sold_buyers,
        outcome.buyers - outcome.sold_buyers,
        outcome.carts_only,
        outcome.units,
        outcome.stock_start,
        rng,
    )


def _orders_and_events(
    journeys: Journeys,
    catalog: Catalog,
    population: Population,
    prices: PricePath,
    dates: pd.DatetimeIndex,
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:
    tz = DEMO_TIMEZONE
    midnight = dates.tz_localize(tz)
    view_s, cart_s = journey_times(journeys.day, journeys.kind, rng)
    customer_ids = population.customers[c.CUSTOMER_ID].to_numpy()
    item_ids = catalog.products[c.ITEM_ID].to_numpy()

    # Orders: a known customer's purchases on one day are one order (checked out once,
    # after the last item went into the cart); a guest's purchase is an order of its own.
    bought = np.flatnonzero(journeys.kind == PURCHASE)
    buyer = journeys.customer[bought]
    guest_key = -1 - np.arange(len(bought))  # unique per guest line
    group_key = np.where(buyer >= 0, buyer, guest_key).astype(np.int64)
    order_frame = pd.DataFrame({"key": group_key, "day": journeys.day[bought], "cart": cart_s[bought]})
    checkout = order_frame.groupby(["key", "day"])["cart"].transform("max").to_numpy()
    checkout = np.minimum(checkout + rng.exponential(900, len(bought)).astype(np.int64) + 30, 86_399)
    order_frame["checkout"] = checkout
    order_frame["checkout"] = order_frame.groupby(["key", "day"])["checkout"].transform("max")
    ordered_at = midnight[journeys.day[bought]] + pd.to_timedelta(
        order_frame["checkout"].to_numpy(), unit="s"
    )
    group = order_frame.groupby(["key", "day"]).ngroup().to_numpy()
    first_time = pd.Series(ordered_at).groupby(group).transform("min")
    rank = pd.DataFrame({"t": first_time.to_numpy(), "g": group}).sort_values(["t", "g"]).drop_duplicates("g")
    number = np.empty(group.max() + 1 if len(group) else 0, np.int64)
    number[rank["g"].to_numpy()] = np.arange(1, len(rank) + 1)
    order_id = np.array([f"SO{n:07d}" for n in number])[group] if len(group) else np.array([], str)
    item_index = journeys.item[bought]
    paid = prices.price[item_index, journeys.day[bought]]
    orders = pd.DataFrame(
        {
            c.ORDER_ID: order_id,
            c.CUSTOMER_ID: np.where(buyer >= 0, customer_ids[np.maximum(buyer, 0)], None),
            c.ITEM_ID: item_ids[item_index],
            c.QUANTITY: journeys.units[bought],
            c.UNIT_PRICE: paid,
            c.ORDERED_AT: ordered_at,
            c.RETURNED: False,
        }
    )
    # two journeys to the same item in one order are one order line
    orders = orders.groupby([c.ORDER_ID, c.ITEM_ID], sort=False, as_index=False).agg(
        {
            c.CUSTOMER_ID: "first",
            c.QUANTITY: "sum",
            c.UNIT_PRICE: "first",
            c.ORDERED_AT: "first",
            c.RETURNED: "first",
        }
    )[list(orders.columns)]
    return_rate = pd.Series(catalog.return_rate, index=item_ids).loc[orders[c.ITEM_ID]].to_numpy()
    returns = _returns(orders, return_rate, dates[-1].tz_localize(tz), rng)
    orders = pd.concat([orders, returns], ignore_index=True).sort_values(
        [c.ORDERED_AT, c.ORDER_ID], kind="stable"
    )

    # Events: every journey starts with a view; carts and purchases follow the same visitor.
    who = np.where(journeys.customer >= 0, customer_ids[np.maximum(journeys.customer, 0)], None)
    at_view = midnight[journeys.day] + pd.to_timedelta(view_s, unit="s")
    carted = journeys.kind >= 1
    at_cart = midnight[journeys.day[carted]] + pd.to_timedelta(cart_s[carted], unit="s")
    searched = np.flatnonzero((journeys.customer >= 0) & (rng.random(len(journeys.day)) < SEARCH_SHARE))
    parts = [
        pd.DataFrame(
            {c.CUSTOMER_ID: who, c.ITEM_ID: item_ids[journeys.item], c.EVENT: c.VIEW, c.AT: at_view}
        ),
        pd.DataFrame(
            {
                c.CUSTOMER_ID: who[carted],
                c.ITEM_ID: item_ids[journeys.item[carted]],
                c.EVENT: c.ADD_TO_CART,
                c.AT: at_cart,
            }
        ),
        pd.DataFrame(
            {
                c.CUSTOMER_ID: orders.loc[~orders[c.RETURNED], c.CUSTOMER_ID].to_numpy(),
                c.ITEM_ID: orders.loc[~orders[c.RETURNED], c.ITEM_ID].to_numpy(),
                c.EVENT: c.PURCHASE,
                c.AT: orders.loc[~orders[c.RETURNED], c.ORDERED_AT].to_numpy(),
            }
        ),
        pd.DataFrame(
            {
                c.CUSTOMER_ID: who[searched],
                c.ITEM_ID: None,
                c.EVENT: c.SEARCH,
                c.AT: at_view[searched] - pd.Timedelta(seconds=60),
            }
        ),
    ]
    events = pd.concat(parts, ignore_index=True).sort_values(c.AT, kind="stable").reset_index(drop=True)
    return {c.ORDERS: orders.reset_index(drop=True), c.EVENTS: events}


def _returns(
    orders: pd.DataFrame, return_rate: np.ndarray, end: pd.Timestamp, rng: np.random.Generator
) -> pd.DataFrame:
    """Some lines come back 5-25 days later; a return after the end of the history has
    not happened yet."""
    returned = rng.random(len(orders)) < return_rate
    lines = orders[returned].copy()
    lines[c.ORDERED_AT] = lines[c.ORDERED_AT] + pd.to_timedelta(rng.integers(5, 26, len(lines)), unit="D")
    lines = lines[lines[c.ORDERED_AT] <= end + pd.Timedelta(days=1)]
    lines[c.ORDER_ID] = "RT" + lines[c.ORDER_ID].str.slice(2)
    lines[c.RETURNED] = True
    return lines


def stock_changes(stock_start: np.ndarray, item_ids: pd.Series, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """The stock_history table: stock at the start of the first day and of every day it
    changed (a change log; the value holds until the next row)."""
    changed = np.ones_like(stock_start, bool)
    changed[:, 1:] = stock_start[:, 1:] != stock_start[:, :-1]
    item_index, day_index = np.nonzero(changed)
    return pd.DataFrame(
        {
            c.ITEM_ID: item_ids.to_numpy()[item_index],
            c.DATE: dates[day_index].astype("datetime64[us]"),
            c.STOCK: stock_start[item_index, day_index],
        }
    )
