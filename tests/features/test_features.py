"""Feature pipelines on hand-made tables whose right answers are worked out here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.clusters import behaviour, cluster_customers
from features.customer_features import customer_features
from features.demand import daily_demand
from features.interactions import build_interactions, id_maps
from features.item_features import item_features
from features.journey import funnel, journeys
from features.rfm import quintile_score, rfm_table
from storewise import columns as c
from storewise.settings import ClusterSettings, InteractionWeights

TZ = "Asia/Kuala_Lumpur"


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def orders_table(rows: list[tuple]) -> pd.DataFrame:
    """rows: (order_id, customer_id, item_id, quantity, unit_price, 'YYYY-MM-DD HH:MM', returned)"""
    frame = pd.DataFrame(
        rows,
        columns=[c.ORDER_ID, c.CUSTOMER_ID, c.ITEM_ID, c.QUANTITY, c.UNIT_PRICE, c.ORDERED_AT, c.RETURNED],
    )
    frame[c.ORDERED_AT] = pd.to_datetime(frame[c.ORDERED_AT]).dt.tz_localize(TZ)
    return frame


def events_table(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[c.CUSTOMER_ID, c.ITEM_ID, c.EVENT, c.AT])
    frame[c.AT] = pd.to_datetime(frame[c.AT]).dt.tz_localize(TZ)
    return frame


def customers_table(consent: dict[str, bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            c.CUSTOMER_ID: list(consent),
            c.REGION: "Selangor",
            c.IS_MEMBER: False,
            c.CONSENT_PERSONALIZATION: list(consent.values()),
            c.CONSENT_MARKETING: False,
        }
    )


# --- interactions ------------------------------------------------------------------


def test_pairs_that_end_at_or_below_zero_are_dropped_and_counts_are_kept() -> None:
    weights = InteractionWeights(view=1, add_to_cart=3, purchase=8, **{"return": -6}, half_life_days=10)
    orders = orders_table(
        [
            ("O1", "ann", "A", 1, 10.0, "2026-01-01 10:00", False),
            ("R1", "ann", "A", 1, 10.0, "2026-01-11 10:00", True),
            ("O2", "bob", "A", 1, 10.0, "2026-01-11 10:00", False),
            ("O3", None, "B", 1, 10.0, "2026-01-11 10:00", False),
            ("O4", "cat", "B", 2, 10.0, "2026-01-21 10:00", False),
        ]
    )
    events = events_table(
        [
            ("ann", "B", c.VIEW, "2026-01-21 10:00"),
            ("ann", "B", c.ADD_TO_CART, "2026-01-11 10:00"),
            ("cat", "B", c.PURCHASE, "2026-01-21 10:00"),
            (None, "A", c.VIEW, "2026-01-21 10:00"),
        ]
    )
    customers = customers_table({"ann": True, "bob": False, "cat": True})
    table = build_interactions(orders, events, customers, weights).set_index([c.CUSTOMER_ID, c.ITEM_ID])
    # ann/A: a purchase 20 days old (8 * 0.25 = 2) less a return 10 days old (6 * 0.5 = 3) < 0
    # ann/B: a view now (1) and a cart 10 days old (3 * 0.5)
    # cat/B: one order line (8), the purchase event is not counted again
    # bob did not consent, the guest has no id, the anonymous view has no one
    assert sorted(table.index) == [("ann", "B"), ("cat", "B")]
    assert table.loc[("ann", "B"), "weight"] == pytest.approx(1 + 1.5)
    assert table.loc[("cat", "B"), "weight"] == pytest.approx(8)
    assert table.loc[("ann", "B"), ["views", "add_to_carts", "purchases", "returns"]].tolist() == [1, 1, 0, 0]
    assert table.loc[("cat", "B"), "purchases"] == 1


def test_interactions_before_a_cutoff_decay_to_the_cutoff() -> None:
    weights = InteractionWeights(half_life_days=10)
    orders = orders_table(
        [
            ("O1", "ann", "A", 1, 10.0, "2026-01-01 10:00", False),
            ("O2", "ann", "B", 1, 10.0, "2026-01-20 10:00", False),
        ]
    )
    table = build_interactions(
        orders, None, customers_table({"ann": True}), weights, until=at("2026-01-11 10:00")
    )
    assert table[c.ITEM_ID].tolist() == ["A"]
    assert table["weight"].iloc[0] == pytest.approx(weights.purchase * 0.5)


def test_a_shop_with_no_order_lines_and_no_events_has_no_interactions() -> None:
    orders = orders_table([("O1", "ann", "A", 1, 10.0, "2026-01-01 10:00", False)]).iloc[:0]
    table = build_interactions(orders, None, customers_table({"ann": True}), InteractionWeights())
    assert table.empty
    assert {c.CUSTOMER_ID, c.ITEM_ID, "weight"} <= set(table.columns)


def test_id_maps_keep_every_product() -> None:
    interactions = pd.DataFrame({c.CUSTOMER_ID: ["b", "a", "b"], c.ITEM_ID: ["X", "X", "Y"]})
    products = pd.DataFrame({c.ITEM_ID: ["Z", "Y", "X"]})
    users, items = id_maps(interactions, products)
    assert users.values.tolist() == [["a", 0], ["b", 1]]
    assert items.values.tolist() == [["X", 0], ["Y", 1], ["Z", 2]]


# --- RFM ---------------------------------------------------------------------------


def test_quintile_scores_share_ties() -> None:
    values = pd.Series([1, 1, 1, 1, 1, 1, 2, 3, 5, 10])
    # average ranks: the six 1s share rank 3.5 -> percentile 0.35 -> score ceil(1.75) = 2
    assert quintile_score(values).tolist() == [2, 2, 2, 2, 2, 2, 4, 4, 5, 5]


def test_rfm_values_scores_and_segments() -> None:
    # Five customers; the last order in the data is on 2026-03-31, so the reference day is 04-01.
    rows = [
        # A: bought 4 times, last on the last day, spent most -> champion
        ("A1", "A", "x", 1, 100.0, "2026-01-10 10:00", False),
        ("A2", "A", "x", 1, 100.0, "2026-02-10 10:00", False),
        ("A3", "A", "x", 1, 100.0, "2026-03-10 10:00", False),
        ("A4", "A", "x", 2, 100.0, "2026-03-31 10:00", False),
        # B: one order, 2 days ago -> new
        ("B1", "B", "x", 1, 50.0, "2026-03-29 12:00", False),
        # C: three orders long ago, big spender -> can't lose
        ("C1", "C", "x", 3, 100.0, "2025-10-01 10:00", False),
        ("C2", "C", "x", 3, 100.0, "2025-10-05 10:00", False),
        ("C3", "C", "x", 1, 100.0, "2025-10-09 10:00", False),
        # D: one small order long ago -> lost
        ("D1", "D", "x", 1, 5.0, "2025-09-01 10:00", False),
        # E: two orders, mid-way, one of them returned in full
        ("E1", "E", "x", 1, 80.0, "2026-02-01 10:00", False),
        ("E2", "E", "x", 1, 80.0, "2026-02-02 10:00", False),
        ("ER", "E", "x", 1, 80.0, "2026-02-10 10:00", True),
        # a guest: no row
        ("G1", None, "x", 9, 100.0, "2026-03-30 10:00", False),
    ]
    table = rfm_table(orders_table(rows)).set_index(c.CUSTOMER_ID)
    assert sorted(table.index) == ["A", "B", "C", "D", "E"]
    assert table["recency_days"].to_dict() == {"A": 0, "B": 2, "C": 173, "D": 211, "E": 57}
    assert table["frequency"].to_dict() == {"A": 4, "B": 1, "C": 3, "D": 1, "E": 2}
    assert table["monetary"].to_dict() == {"A": 500.0, "B": 50.0, "C": 700.0, "D": 5.0, "E": 80.0}
    # percentile ranks of 5 values are 0.2 .. 1.0 -> scores 1 .. 5; ties share
    assert table["r_score"].to_dict() == {"A": 5, "B": 4, "C": 2, "D": 1, "E": 3}
    assert table["f_score"].to_dict() == {"A": 5, "B": 2, "C": 4, "D": 2, "E": 3}  # B, D tie at 1.5/5
    assert table["m_score"].to_dict() == {"A": 4, "B": 2, "C": 5, "D": 1, "E": 3}
    # FM = round half up of the mean: A 4.5->5, B 2, C 4.5->5, D 1.5->2, E 3
    assert table["fm_score"].to_dict() == {"A": 5, "B": 2, "C": 5, "D": 2, "E": 3}
    assert table["segment"].to_dict() == {
        "A": "champions",
        "B": "new",
        "C": "can't lose",
        "D": "lost",
        "E": "loyal",
    }


# --- journey -----------------------------------------------------------------------


def test_funnel_counts_conversion_and_stage_times() -> None:
    events = events_table(
        [
            ("ann", "X", c.VIEW, "2026-01-05 10:00"),
            ("ann", "X", c.ADD_TO_CART, "2026-01-05 10:04"),
            ("ann", "X", c.PURCHASE, "2026-01-05 10:24"),
            ("ann", "X", c.VIEW, "2026-01-06 10:00"),  # second view in the month: same journey
            ("bob", "X", c.VIEW, "2026-01-07 09:00"),
            ("bob", "X", c.ADD_TO_CART, "2026-01-07 09:10"),
            ("cat", "Y", c.VIEW, "2026-01-08 09:00"),  # looks only
            ("dan", "Y", c.VIEW, "2026-01-09 09:00"),
            ("dan", "Y", c.ADD_TO_CART, "2026-01-14 09:00"),  # 120 h later: outside 72 h
            (None, "Y", c.VIEW, "2026-01-09 09:00"),  # anonymous: not followed
            ("ann", "Y", c.VIEW, "2026-02-01 09:00"),
            ("ann", "Y", c.ADD_TO_CART, "2026-02-01 09:02"),
            ("ann", "Y", c.PURCHASE, "2026-02-01 09:32"),
        ]
    )
    segments = pd.DataFrame({c.CUSTOMER_ID: ["ann"], "segment": ["champions"]})
    table = funnel(journeys(events, "M", 72), segments).set_index(["period", "segment"])
    january = table.loc[("2026-01", "all")]
    assert january[["viewed", "carted", "purchased"]].tolist() == [4, 2, 1]
    assert january["view_to_cart"] == 0.5
    assert january["cart_to_purchase"] == 0.5
    assert january["view_to_purchase"] == 0.25
    assert january["median_minutes_view_to_cart"] == pytest.approx(7.0)  # 4 and 10 minutes
    assert january["median_minutes_cart_to_purchase"] == pytest.approx(20.0)
    assert table.loc[("2026-01", "champions"), ["viewed", "carted", "purchased"]].tolist() == [1, 1, 1]
    assert table.loc[("2026-01", "no purchase yet"), ["viewed", "carted", "purchased"]].tolist() == [3, 1, 0]
    assert table.loc[("2026-02", "all"), "median_minutes_cart_to_purchase"] == pytest.approx(30.0)


# --- demand ------------------------------------------------------------------------


def demand_inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    products = pd.DataFrame({c.ITEM_ID: ["A", "B"], c.LIST_PRICE: [20.0, 50.0], c.CATEGORY: ["x", "y"]})
    orders = orders_table(
        [
            ("O1", "ann", "A", 2, 18.0, "2026-01-01 10:00", False),
            ("O2", None, "A", 1, 20.0, "2026-01-04 23:30", False),
            ("O3", "bob", "A", 3, 20.0, "2026-01-05 09:00", False),
            ("R1", "ann", "A", 1, 18.0, "2026-01-05 10:00", True),  # a return is not a sale
            ("O4", "bob", "B", 1, 50.0, "2026-01-03 12:00", False),
        ]
    )
    prices = pd.DataFrame(
        {
            c.ITEM_ID: ["A", "A", "B"],
            c.DATE: pd.to_datetime(["2025-12-20", "2026-01-03", "2026-01-03"]),
            c.PRICE: [18.0, 20.0, 50.0],
            c.PROMO: [True, False, False],
        }
    )
    stock = pd.DataFrame(
        {
            c.ITEM_ID: ["A", "A", "A", "B"],
            c.DATE: pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-05", "2026-01-03"]),
            c.STOCK: [5, 0, 3, 4],
        }
    )
    return orders, products, prices, stock


def test_days_without_sales_are_zero_rows_with_the_price_in_force() -> None:
    orders, products, prices, stock = demand_inputs()
    table = daily_demand(orders, products, TZ, price_history=prices, stock_history=stock)
    a = table[table[c.ITEM_ID] == "A"].set_index(c.DATE)
    assert list(a.index.strftime("%m-%d")) == ["01-01", "01-02", "01-03", "01-04", "01-05"]
    assert a["units"].tolist() == [2, 0, 0, 1, 3]
    assert a["revenue"].tolist() == [36.0, 0.0, 0.0, 20.0, 60.0]
    assert a[c.PRICE].tolist() == [18.0, 18.0, 20.0, 20.0, 20.0]
    assert a[c.PROMO].tolist() == [True, True, False, False, False]
    assert np.isnan(a["avg_price_paid"].iloc[1])
    # B first shows on 01-03 (its first price and sale): no rows before
    b = table[table[c.ITEM_ID] == "B"]
    assert b[c.DATE].dt.strftime("%m-%d").tolist() == ["01-03", "01-04", "01-05"]


def test_stock_out_days_are_flagged() -> None:
    orders, products, prices, stock = demand_inputs()
    a = daily_demand(orders, products, TZ, price_history=prices, stock_history=stock)
    a = a[a[c.ITEM_ID] == "A"].set_index(c.DATE)
    # stock at start: 5, 0, 0, 0, 3; on 01-04 a unit sold with stock 0 at start is odd but
    # recorded as the data says; 01-05 sold 3 of 3: out of stock during the day
    assert a["stock_start"].tolist() == [5, 0, 0, 0, 3]
    assert a["stock_out"].tolist() == [False, True, True, True, True]


def test_velocity_is_a_trailing_mean_of_the_days_before() -> None:
    orders, products, prices, _stock = demand_inputs()
    a = daily_demand(orders, products, TZ, price_history=prices, velocity_windows=(2, 28))
    a = a[a[c.ITEM_ID] == "A"]
    # units 2, 0, 0, 1, 3
    assert np.isnan(a["velocity_2d"].iloc[0])
    assert a["velocity_2d"].iloc[1:].tolist() == [2.0, 1.0, 0.0, 0.5]
    assert a["velocity_28d"].iloc[1:].tolist() == pytest.approx([2.0, 1.0, 2 / 3, 0.75])


def test_without_price_history_the_last_price_paid_holds() -> None:
    orders, products, _, _ = demand_inputs()
    a = daily_demand(orders, products, TZ)
    a = a[a[c.ITEM_ID] == "A"]
    assert a[c.PRICE].tolist() == [18.0, 18.0, 18.0, 20.0, 20.0]
    assert a["stock_start"].isna().all()
    assert not a["stock_out"].any()


# --- items and clusters ------------------------------------------------------------


def test_price_bands_are_thirds_within_a_category() -> None:
    products = pd.DataFrame(
        {
            c.ITEM_ID: list("abcdef"),
            c.NAME: ["Red Heart Mug", "x", "y", "z", "w", "v"],
            c.CATEGORY: ["mug", "mug", "mug", "ring", "ring", "ring"],
            c.TAGS: [None, "t1", "t2;budget", "t3", "t4", "t5"],
            c.LIST_PRICE: [1.0, 2.0, 3.0, 100.0, 200.0, 300.0],
        }
    )
    table = item_features(products).set_index(c.ITEM_ID)
    assert table["price_band"].tolist() == ["budget", "mid", "premium"] * 2
    assert table.loc["a", c.TAGS] == "red;heart;mug", "no tags: the name's words"
    assert table.loc["c", c.TAGS] == "t2"


def test_clusters_find_planted_groups_and_describe_them() -> None:
    rng = np.random.default_rng(0)
    n = 60
    big_spenders = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 10, n),
            "frequency": rng.integers(8, 12, n),
            "monetary": rng.normal(3000, 100, n),
        }
    )
    lapsed = pd.DataFrame(
        {"recency_days": rng.integers(300, 360, n), "frequency": 1, "monetary": rng.normal(40, 5, n)}
    )
    deal = pd.DataFrame(
        {
            "recency_days": rng.integers(20, 40, n),
            "frequency": rng.integers(2, 4, n),
            "monetary": rng.normal(300, 20, n),
        }
    )
    rfm = pd.concat([big_spenders, lapsed, deal], ignore_index=True)
    rfm[c.CUSTOMER_ID] = [f"c{i}" for i in range(len(rfm))]
    orders = []
    for i, row in rfm.iterrows():
        price = 100.0 if i < n else (40.0 if i < 2 * n else 60.0)  # the deal seekers pay 60 on a 100 list
        item = "ring" if i < 2 * n else "box"
        orders.append((f"o{i}", row[c.CUSTOMER_ID], item, 1, price, "2026-01-01 10:00", False))
    products = pd.DataFrame(
        {c.ITEM_ID: ["ring", "box"], c.CATEGORY: ["rings", "boxes"], c.LIST_PRICE: [100.0, 100.0]}
    )
    order_table = orders_table(orders)
    discounted = pd.Series(order_table[c.UNIT_PRICE] < 97, index=order_table.index) & (
        order_table[c.ITEM_ID] == "box"
    )
    table = behaviour(order_table, products, rfm, discounted, top_categories=4)
    few = cluster_customers(table.iloc[:3], ClusterSettings(min_clusters=2, max_clusters=5, seed=1))
    assert few.assignments["cluster"].tolist() == [0, 0, 0], "three buyers are too few to split"
    assert few.selection.loc[few.selection["chosen"], "k"].item() == 1
    assert few.profiles["customers"].tolist() == [3]
    result = cluster_customers(table, ClusterSettings(min_clusters=2, max_clusters=5, seed=1))
    assert result.selection.loc[result.selection["chosen"], "k"].item() == 3
    assignment = result.assignments.set_index(c.CUSTOMER_ID)["cluster"]
    groups = [set(assignment.iloc[i * n : (i + 1) * n]) for i in range(3)]
    assert all(len(group) == 1 for group in groups), "each planted group is one cluster"
    assert len(set.union(*groups)) == 3
    profiles = result.profiles.set_index("cluster")
    big = profiles.loc[next(iter(groups[0]))]
    assert "recent" in big["label"]
    assert "high spend" in big["label"]
    assert "lapsed" in profiles.loc[next(iter(groups[1])), "label"]
    assert "buys on promotion" in profiles.loc[next(iter(groups[2])), "label"]
    assert profiles["customers"].sum() == 3 * n


@pytest.mark.filterwarnings("error")  # pandas' warnings too: they become errors in pandas 4
def test_a_customer_leans_to_the_band_and_category_with_most_evidence() -> None:
    """A purchase counts five views. Worked out by hand: ann bought a shoe (5) and viewed two
    hats (2): shoes, and the band of her evidence; bob has 3 for each category, a tie,
    which goes to the first in sorted order (hats); cid touched only an item with no
    category and an item the catalogue lacks: unknown; dee has no interaction: unknown."""
    items = pd.DataFrame(
        {
            c.ITEM_ID: ["shoe", "hat1", "hat2", "odd"],
            c.CATEGORY: ["shoes", "hats", "hats", None],
            "price_band": ["high", "low", "low", None],
        }
    )
    interactions = pd.DataFrame(
        {
            c.CUSTOMER_ID: ["ann", "ann", "ann", "bob", "bob", "cid", "cid"],
            c.ITEM_ID: ["shoe", "hat1", "hat2", "shoe", "hat1", "odd", "gone"],
            "purchases": [1, 0, 0, 0, 0, 0, 1],
            "views": [0, 1, 1, 3, 3, 2, 0],
        }
    )
    customers = pd.DataFrame(
        {
            c.CUSTOMER_ID: ["ann", "bob", "cid", "dee"],
            c.REGION: ["north", None, "south", "east"],
            c.IS_MEMBER: [True, False, False, True],
        }
    )
    table = customer_features(customers, rfm_table(orders_table([])), interactions, items)
    assert table["favourite_category"].tolist() == ["shoes", "hats", "unknown", "unknown"]
    assert table["preferred_price_band"].tolist() == ["high", "high", "unknown", "unknown"]
    assert table[c.REGION].tolist() == ["north", "unknown", "south", "east"]
    # no orders: nobody has an RFM segment yet, and the column is text all the same
    assert table["rfm_segment"].tolist() == ["no purchase yet"] * 4
    assert pd.api.types.is_string_dtype(table["rfm_segment"])
