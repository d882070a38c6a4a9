"""The catalogue as it was at a cutoff: an item the shop's records first show after it had
not been launched, so the test weeks may not offer it (training/recommender/data.py)."""

from __future__ import annotations

import pandas as pd

from features.item_features import item_features
from storewise import columns as c
from storewise.settings import InteractionWeights
from tests.style import TZ, style_shop
from training.recommender.data import build_train_data, build_truth, first_seen, listed_at, prepare_tables

CUTOFF = pd.Timestamp("2026-03-01", tz=TZ)


def launched_shop() -> dict[str, pd.DataFrame]:
    """The style shop and four more items: `late` first sold after the cutoff, `viewed`
    viewed before it but first sold after, `priced` priced (nothing else) from after it, and
    `shelf`, in the catalogue with no record at all."""
    tables = style_shop()
    extra = ["late", "viewed", "priced", "shelf"]
    products = tables[c.PRODUCTS]
    more = pd.concat([products.iloc[[0]]] * len(extra), ignore_index=True).assign(
        **{c.ITEM_ID: extra, c.NAME: [f"vintage {name}" for name in extra]}
    )
    tables[c.PRODUCTS] = pd.concat([products, more], ignore_index=True)
    after = CUTOFF + pd.Timedelta(days=5)
    sold = pd.DataFrame(
        {
            c.ORDER_ID: ["o_late", "o_viewed"],
            c.CUSTOMER_ID: ["a1", "a2"],
            c.ITEM_ID: ["late", "viewed"],
            c.QUANTITY: 1,
            c.UNIT_PRICE: 30.0,
            c.ORDERED_AT: [after, after],
            c.RETURNED: False,
        }
    )
    tables[c.ORDERS] = pd.concat([tables[c.ORDERS], sold], ignore_index=True)
    tables[c.EVENTS] = pd.DataFrame(
        {
            c.CUSTOMER_ID: ["a3"],
            c.ITEM_ID: ["viewed"],
            c.EVENT: [c.VIEW],
            c.AT: [CUTOFF - pd.Timedelta(days=10)],
        }
    )
    tables[c.PRICE_HISTORY] = pd.DataFrame(
        {
            c.ITEM_ID: ["priced", "V0"],
            c.DATE: [(CUTOFF + pd.Timedelta(days=2)).date(), pd.Timestamp("2025-12-01").date()],
            c.PRICE: [30.0, 30.0],
        }
    )
    return tables


def test_an_item_is_first_seen_at_its_earliest_order_event_or_price() -> None:
    seen = prepare_tables(launched_shop()).first_seen
    utc = CUTOFF.tz_convert("UTC").tz_localize(None)
    assert seen["late"] == utc + pd.Timedelta(days=5)
    assert seen["viewed"] == utc - pd.Timedelta(days=10)  # the view, before the sale
    # a price's day from its local midnight (the shop is at UTC+8)
    assert seen["priced"] == utc + pd.Timedelta(days=2)
    assert seen["V0"] == pd.Timestamp("2025-11-30 16:00")  # priced before its first sale
    assert "shelf" not in seen.index


def test_the_catalogue_at_a_cutoff_leaves_out_what_came_later() -> None:
    prepared = prepare_tables(launched_shop())
    listed = set(listed_at(prepared, CUTOFF))
    style_items = {f"V{i}" for i in range(5)} | {f"B{i}" for i in range(5)}
    assert listed == style_items | {"viewed", "shelf"}
    # after the launches everything is listed
    assert set(listed_at(prepared, CUTOFF + pd.Timedelta(days=30))) == listed | {"late", "priced"}


def test_listed_only_data_and_its_truth_leave_the_unlaunched_item_out() -> None:
    tables = launched_shop()
    features = item_features(tables[c.PRODUCTS])
    window = (CUTOFF, CUTOFF + pd.Timedelta(days=30))

    def data_and_truth(listed_only: bool) -> tuple[set[str], dict[str, set[str]]]:
        data = build_train_data(
            tables,
            features,
            InteractionWeights(),
            CUTOFF,
            trending_days=14,
            repeat_half_life_days=90,
            listed_only=listed_only,
        )
        truth = build_truth(tables[c.ORDERS], tables[c.CUSTOMERS], data, window)
        bought = {
            str(data.user_ids[user]): {str(data.item_ids[i]) for i in items}
            for user, items in zip(truth.user_index, truth.items, strict=True)
        }
        return set(data.item_ids), bought

    listed_items, listed_truth = data_and_truth(True)
    all_items, all_truth = data_and_truth(False)
    assert all_items - listed_items == {"late", "priced"}
    assert all_truth == {"a1": {"late"}, "a2": {"viewed"}}
    # the launch after the cutoff is no one's truth: no model could have offered it
    assert listed_truth == {"a2": {"viewed"}}


def test_a_price_day_is_read_in_the_shops_time_zone() -> None:
    """A price dated the cutoff's day launches the item on that day wherever the shop is
    (its local midnight), and a date the intake accepts up to 9999-12-31 does not break the
    run."""
    for zone in ("America/Los_Angeles", "Asia/Tokyo"):
        tables = launched_shop()
        tables[c.ORDERS] = tables[c.ORDERS].assign(
            **{c.ORDERED_AT: tables[c.ORDERS][c.ORDERED_AT].dt.tz_convert(zone)}
        )
        cutoff = pd.Timestamp("2026-03-01", tz=zone)
        tables[c.PRICE_HISTORY] = pd.DataFrame(
            {
                c.ITEM_ID: ["priced", "late", "V0"],
                c.DATE: [
                    cutoff.date(),
                    pd.Timestamp("9999-12-31").date(),
                    (cutoff - pd.Timedelta(days=1)).date(),
                ],
                c.PRICE: 30.0,
            }
        )
        prepared = prepare_tables(tables)
        listed = set(listed_at(prepared, cutoff))
        assert "priced" not in listed, zone  # launched on the cutoff's day: not before it
        assert "priced" in set(listed_at(prepared, cutoff + pd.Timedelta(days=1))), zone
        assert prepared.first_seen["V0"] < prepared.first_seen["priced"]
        assert "late" not in listed  # sold after the cutoff; its price is from year 9999


def test_a_price_on_a_midnight_that_happens_twice_still_counts() -> None:
    """Havana sets its clocks back at midnight on 2026-11-01: the day's first midnight."""
    orders = pd.DataFrame({c.ITEM_ID: ["a"], c.ORDERED_AT: [pd.Timestamp("2026-01-05")]})
    prices = pd.DataFrame({c.ITEM_ID: ["b"], c.DATE: [pd.Timestamp("2026-11-01").date()], c.PRICE: 1.0})
    seen = first_seen(orders, None, prices, "America/Havana")
    assert seen["b"] == pd.Timestamp("2026-11-01 04:00")  # midnight at UTC-4, still daylight time
