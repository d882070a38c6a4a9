"""The customer journey: the view → add to cart → purchase funnel per period and segment.

A journey is a known customer's first view of an item in a period. It reaches the cart
stage if the customer adds that item to the cart within `max_hours_between_stages` of the
view, and the purchase stage if they buy it within as long after the cart. Anonymous
visitors cannot be followed from one step to the next and are left out. Conversion is
per stage (cart / view, purchase / cart) and overall (purchase / view); times between
stages are medians in minutes. The segment is the customer's current RFM segment
("no purchase yet" for those without one); an "all" row sums each period.
"""

from __future__ import annotations

import pandas as pd

from storewise import columns as c

PERIOD, SEGMENT = "period", "segment"
VIEWED, CARTED, PURCHASED = "viewed", "carted", "purchased"
NO_PURCHASE_YET, ALL = "no purchase yet", "all"
FUNNEL_COLUMNS = [
    PERIOD,
    SEGMENT,
    VIEWED,
    CARTED,
    PURCHASED,
    "view_to_cart",
    "cart_to_purchase",
    "view_to_purchase",
    "median_minutes_view_to_cart",
    "median_minutes_cart_to_purchase",
]


def journeys(events: pd.DataFrame, period: str, max_hours: float) -> pd.DataFrame:
    """One row per (customer, item, period) first view, with the times it reached the
    cart and the purchase (NaT if it did not)."""
    known = events[events[c.CUSTOMER_ID].notna() & events[c.ITEM_ID].notna()]
    tz = known[c.AT].dt.tz
    views = known[known[c.EVENT] == c.VIEW]
    views = views.assign(**{PERIOD: views[c.AT].dt.tz_localize(None).dt.to_period(period).astype("str")})
    first_views = views.sort_values(c.AT).drop_duplicates([c.CUSTOMER_ID, c.ITEM_ID, PERIOD])
    keys = [c.CUSTOMER_ID, c.ITEM_ID]
    tolerance = pd.Timedelta(hours=max_hours)

    def next_step(earlier: pd.DataFrame, time_column: str, event: str, name: str) -> pd.DataFrame:
        later = known.loc[known[c.EVENT] == event, [*keys, c.AT]].rename(columns={c.AT: name})
        left = earlier.dropna(subset=[time_column]).sort_values(time_column)
        matched = pd.merge_asof(
            left,
            later.sort_values(name),
            left_on=time_column,
            right_on=name,
            by=keys,
            direction="forward",
            tolerance=tolerance,
        )
        return earlier.merge(matched[[*keys, PERIOD, name]], on=[*keys, PERIOD], how="left")

    base = first_views[[*keys, PERIOD, c.AT]].rename(columns={c.AT: "viewed_at"})
    with_cart = next_step(base, "viewed_at", c.ADD_TO_CART, "carted_at")
    with_purchase = next_step(with_cart, "carted_at", c.PURCHASE, "purchased_at")
    for column in ("viewed_at", "carted_at", "purchased_at"):
        with_purchase[column] = pd.to_datetime(with_purchase[column], utc=True).dt.tz_convert(tz)
    return with_purchase


def funnel(journey_rows: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """Counts, conversion and median stage times per period and segment, plus 'all'."""
    if journey_rows.empty:
        return pd.DataFrame(columns=FUNNEL_COLUMNS)
    segment_of = segments.set_index(c.CUSTOMER_ID)[SEGMENT] if len(segments) else pd.Series(dtype="str")
    rows = journey_rows.assign(
        **{SEGMENT: journey_rows[c.CUSTOMER_ID].map(segment_of).fillna(NO_PURCHASE_YET).to_numpy()},
        minutes_to_cart=(journey_rows["carted_at"] - journey_rows["viewed_at"]).dt.total_seconds() / 60,
        minutes_to_purchase=(journey_rows["purchased_at"] - journey_rows["carted_at"]).dt.total_seconds()
        / 60,
    )
    by_segment = _aggregate(rows, [PERIOD, SEGMENT])
    overall = _aggregate(rows, [PERIOD]).assign(**{SEGMENT: ALL})
    table = pd.concat([by_segment, overall], ignore_index=True)
    table[PURCHASED] = table[PURCHASED].astype(int)
    for rate, numerator, denominator in (
        ("view_to_cart", CARTED, VIEWED),
        ("cart_to_purchase", PURCHASED, CARTED),
        ("view_to_purchase", PURCHASED, VIEWED),
    ):
        table[rate] = (table[numerator] / table[denominator].where(table[denominator] > 0)).round(4)
    return table[FUNNEL_COLUMNS].sort_values([PERIOD, SEGMENT]).reset_index(drop=True)


def _aggregate(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return (
        rows.groupby(keys)
        .agg(
            **{
                VIEWED: ("viewed_at", "size"),
                CARTED: ("carted_at", "count"),
                PURCHASED: ("purchased_at", "count"),
                "median_minutes_view_to_cart": ("minutes_to_cart", "median"),
                "median_minutes_cart_to_purchase": ("minutes_to_purchase", "median"),
            }
        )
        .reset_index()
    )
