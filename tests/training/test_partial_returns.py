"""A return takes an item off a customer's purchases only when the whole quantity came back
(training/recommender/data.py): the baskets and buy-again scores are built from what was
kept, while discovery (in training and in the service's answers) leaves out everything the
customer ever bought, kept or sent back."""

from __future__ import annotations

import pandas as pd
import pytest

from storewise import columns as c
from storewise.settings import RecommenderSettings
from tests.style import TZ, recommendations_for, style_data, style_shop
from training.recommender.data import TrainData
from training.recommender.evaluate import make_protocol
from training.recommender.hybrid import fit_hybrid

# `style_data`: the data at 2026-03-01


def returns_shop() -> dict[str, pd.DataFrame]:
    """The style shop, where customer `a0` (who bought V1-V4 once each) also buys B0 (12)
    and B1 (2) in one order, then returns 4 of the B0 and both B1 in a second; and buys B2
    in two orders (1, then 3), returning 1 with the B0."""
    tables = style_shop()
    early, bought = pd.Timestamp("2026-02-03", tz=TZ), pd.Timestamp("2026-02-10", tz=TZ)
    back = pd.Timestamp("2026-02-17", tz=TZ)
    lines = pd.DataFrame(
        {
            c.ORDER_ID: ["o_b2", "o_mixed", "o_mixed", "o_mixed", "C_mixed", "C_mixed", "C_mixed"],
            c.CUSTOMER_ID: "a0",
            c.ITEM_ID: ["B2", "B0", "B1", "B2", "B0", "B1", "B2"],
            c.QUANTITY: [1, 12, 2, 3, 4, 2, 1],
            c.UNIT_PRICE: 30.0,
            c.ORDERED_AT: [early, bought, bought, bought, back, back, back],
            c.RETURNED: [False, False, False, False, True, True, True],
        }
    )
    tables[c.ORDERS] = pd.concat([tables[c.ORDERS], lines], ignore_index=True)
    return tables


def row_of(data: TrainData, customer: str, matrix_name: str) -> dict[str, float]:
    matrix = getattr(data, matrix_name).tocsr()
    user = list(data.user_ids).index(customer)
    start, stop = matrix.indptr[user], matrix.indptr[user + 1]
    return {
        str(data.item_ids[i]): float(v)
        for i, v in zip(matrix.indices[start:stop], matrix.data[start:stop], strict=True)
    }


def test_an_item_partly_returned_stays_bought_and_one_returned_in_full_does_not() -> None:
    data = style_data(returns_shop())
    # B0: one purchase line and one return line net to nothing, but a0 kept 8 of the 12, so
    # it counts as the purchase line times the share kept; B1 came back in full: gone; B2:
    # two purchase lines net of one return line, as always (a return counts against it)
    purchases = row_of(data, "a0", "purchases")
    expected = {"V1": 1.0, "V2": 1.0, "V3": 1.0, "V4": 1.0, "B0": 8 / 12, "B2": 1.0}
    assert purchases == pytest.approx(expected)
    repeat = row_of(data, "a0", "repeat_score")
    assert set(repeat) == set(expected)
    # buy-again: the purchase line decayed over the 19 days to the cutoff, times the share
    # kept; B2's lines decayed over 26, 19 and 12 days, the return's taken off
    assert repeat["B0"] == pytest.approx(0.5 ** (19 / 90) * 8 / 12, rel=1e-6)
    assert repeat["B2"] == pytest.approx(0.5 ** (26 / 90) + 0.5 ** (19 / 90) - 0.5 ** (12 / 90), rel=1e-6)

    discovery = make_protocol("discovery", data, one_time_items=data.item_ids == "")
    user = list(data.user_ids).index("a0")
    excluded = {str(data.item_ids[i]) for i in discovery.excluded[user].indices}
    # none of B0-B2 is new to a0: discovery leaves them out, though B1 came back in full
    assert excluded == {"V1", "V2", "V3", "V4", "B0", "B1", "B2"}
    assert set(row_of(data, "a0", "ever_bought")) == excluded

    # the mixed order is one basket holding B0 and B2, not B1 (a0's latest)
    baskets = data.baskets.tocsr()
    latest = max(i for i, u in enumerate(data.basket_user) if data.user_ids[u] == "a0")
    assert {str(data.item_ids[i]) for i in baskets[latest].indices} == {"B0", "B2"}


def test_the_service_offers_neither_kept_nor_returned_purchases_as_new_and_buys_again_only_kept() -> None:
    """a0 bought V1-V4, B0 (kept 8 of 12), B1 (sent back) and B2: of the ten items, only
    V0, B3 and B4 are new to them. Buy-again offers what they kept, never B1."""
    tables = returns_shop()
    data = style_data(tables)
    model = fit_hybrid(data, tables[c.ORDERS], None, RecommenderSettings(), components={"bm25", "buy_again"})
    model.blends = {protocol: {"bm25": 1.0} for protocol in ("discovery", "business_rules")}
    model.blends["all_purchases"] = {"buy_again": 1.0}
    answers = recommendations_for(model, tables)

    new = answers.recommend("a0", 3, purchased="exclude")
    assert new.personalized
    assert {item.item_id for item in new.items} == {"V0", "B3", "B4"}
    again = answers.recommend("a0", 6, purchased="include")
    assert {item.item_id for item in again.items} == {"V1", "V2", "V3", "V4", "B0", "B2"}
