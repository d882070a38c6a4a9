"""An item's popularity and trending scores at a cutoff count its distinct buyers
(training/recommender/data.py): a customer who buys it twice is one buyer, a guest order
is one buyer of its own, a returned line buys nothing, and a customer who gave no consent
to personalization still bought it. So does the hybrid's decayed trending, each buyer
counted by their latest purchase's age; its recent history sums every purchase line's
decayed weight (training/recommender/hybrid.py). Worked out by hand on the style shop."""

from __future__ import annotations

import pandas as pd
import pytest

from storewise import columns as c
from tests.style import TZ, style_data, style_shop
from training.recommender.data import OrderCodes
from training.recommender.hybrid import decayed_popularity, recency_history

# `style_data`: the data at 2026-03-01, the trending window from 2026-02-15


def shop_with_guests() -> dict[str, pd.DataFrame]:
    """The style shop (each item bought once by 24 of its style's 30 customers, the last
    order on 2026-02-02; `new_a` buys V0 on 2026-02-15) and these lines."""
    tables = style_shop()
    day = {
        name: pd.Timestamp(f"2026-{name}", tz=TZ) for name in ("02-01", "02-20", "02-21", "02-22", "03-05")
    }
    lines = pd.DataFrame(
        [
            ("g1", None, "B0", day["02-01"], False),  # a guest order with B0 on two lines
            ("g1", None, "B0", day["02-01"], False),
            ("g2", None, "B0", day["02-20"], False),  # another guest order, lately
            ("a0_again", "a0", "V1", day["02-20"], False),  # a0 bought V1 before
            ("b0_back", "b0", "B0", day["02-21"], True),  # a return line from b0, who never bought B0
            ("nc", "no_consent", "V2", day["02-22"], False),
            ("late", "b2", "B1", day["03-05"], False),  # after the cutoff
        ],
        columns=[c.ORDER_ID, c.CUSTOMER_ID, c.ITEM_ID, c.ORDERED_AT, c.RETURNED],
    ).assign(**{c.QUANTITY: 1, c.UNIT_PRICE: 30.0})
    tables[c.ORDERS] = pd.concat([tables[c.ORDERS], lines], ignore_index=True)
    return tables


def test_popularity_and_trending_count_distinct_buyers_with_each_guest_order_one() -> None:
    tables = shop_with_guests()
    data = style_data(tables)
    popularity = dict(zip(data.item_ids, data.popularity, strict=True))
    trending = dict(zip(data.item_ids, data.trending, strict=True))
    assert popularity == pytest.approx(
        {
            "V0": 24 + 1,  # new_a
            "V1": 24,  # a0 again: the same buyer
            "V2": 24 + 1,  # no_consent
            "V3": 24,
            "V4": 24,
            "B0": 24 + 2,  # two guest orders (b0's return line is no purchase)
            "B1": 24,  # b2's line is after the cutoff
            "B2": 24,
            "B3": 24,
            "B4": 24,
        }
    )
    assert trending == pytest.approx(
        {item: 0.0 for item in popularity} | {"V0": 1, "V1": 1, "V2": 1, "B0": 1}
    )


def decayed(age_days: float, half_life_days: float) -> float:
    return float(0.5 ** (age_days / half_life_days))


def test_decayed_trending_counts_each_buyer_once_by_their_latest_purchase() -> None:
    """Against the style shop without the extra lines, at a half-life of 7 days."""
    plain, tables = style_shop(), shop_with_guests()
    before = decayed_popularity(plain[c.ORDERS], OrderCodes.of(plain[c.ORDERS]), style_data(plain), 7)
    data = style_data(tables)
    after = decayed_popularity(tables[c.ORDERS], OrderCodes.of(tables[c.ORDERS]), data, 7)
    added = dict(zip(data.item_ids, after - before, strict=True))
    assert added == pytest.approx(
        {item: 0.0 for item in data.item_ids}
        | {
            # g1's two lines (28 days before the cutoff) are one buyer, g2 (9 days) another;
            # b0's return line buys nothing
            "B0": decayed(28, 7) + decayed(9, 7),
            # a0 bought V1 on 01-01 (59 days): their latest purchase is now the one on 02-20
            "V1": decayed(9, 7) - decayed(59, 7),
            "V2": decayed(7, 7),  # no_consent, on 02-22
        },
        abs=1e-6,
    )


def test_the_recent_history_sums_each_customers_purchase_lines_decayed() -> None:
    tables = shop_with_guests()
    data = style_data(tables)
    recent = recency_history(tables[c.ORDERS], OrderCodes.of(tables[c.ORDERS]), data, 30)
    row = {user: i for i, user in enumerate(data.user_ids)}
    column = {item: i for i, item in enumerate(data.item_ids)}
    # a0 bought V1 on 01-01 and again on 02-20
    assert recent[row["a0"], column["V1"]] == pytest.approx(decayed(59, 30) + decayed(9, 30))
    # b2 bought B1 on 01-04; the line after the cutoff adds nothing
    assert recent[row["b2"], column["B1"]] == pytest.approx(decayed(56, 30))
    assert recent[row["b0"], column["B0"]] == 0  # a return line only
    assert recent.shape == (data.n_users, data.n_items)
    # guests are no rows, nor is a customer who gave no consent to personalization
    assert not {"g1", "g2", "no_consent"} & set(data.user_ids)
    # every entry one customer's lines: 30 customers x 4 items per style and new_a's V0
    # (a0's second V1 on the same entry)
    assert recent.nnz == 2 * 30 * 4 + 1
