"""A return takes an item off a customer's purchases only when the whole quantity came back
(training/recommender/data.py): the baskets and buy-again scores are built from what was
kept, while discovery (in training and in the service's answers) leaves out everything the
customer ever bought, kept or sent back."""

from __future__ import annotations

import pandas as pd
import pytest

from features.item_features import item_features
from storewise import columns as c
from storewise.settings import InteractionWeights, RecommenderSettings
from tests.style import TZ, recommendations_for, style_shop
from training.recommender.data import TrainData, build_train_data
from training.recommender.evaluate import make_protocol
from training.recommender.hybrid import fit_hybrid

CUTOFF = pd.Timestamp("2026-03-01", tz=TZ)


def returns_shop() -> dict[str, pd.DataFrame]:
    """The style shop, where customer `a0` (who bought V1-V4 once each) also buys B0 (12)
    and B1 (2) in one order, then returns 4 of the B0 and both B1 in a second."""
    tables = style_shop()
    bought, back = pd.Timestamp("2026-02-10", tz=TZ), pd.Timestamp("2026-02-17", tz=TZ)
    lines = pd.DataFrame(
        {
            c.ORDER_ID: ["o_mixed", "o_mixed", "C_mixed", "C_mixed"],
            c.CUSTOMER_ID: "a0",
            c.ITEM_ID: ["B0", "B1", "B0", "B1"],
            c.QUANTITY: [12, 2, 4, 2],
            c.UNIT_PRICE: 30.0,
            c.ORDERED_AT: [bought, bought, back, back],
            c.RETURNED: [False, False, True, True],
        }
    )
    tables[c.ORDERS] = pd.concat([tables[c.ORDERS], lines], ignore_index=True)
    return tables


def data_at_cutoff(tables: dict[str, pd.DataFrame]) -> TrainData:
    return build_train_data(
        tables,
        item_features(tables[c.PRODUCTS]),
        InteractionWeights(),
        CUTOFF,
        trending_days=14,
        repeat_half_life_days=90,
    )


def row_of(data: TrainData, customer: str, matrix_name: str) -> dict[str, float]:
    matrix = getattr(data, matrix_name).tocsr()
    user = list(data.user_ids).index(customer)
    start, stop = matrix.indptr[user], matrix.indptr[user + 1]
    return {
        str(data.item_ids[i]): float(v)
        for i, v in zip(matrix.indices[start:stop], matrix.data[start:stop], strict=True)
    }


def test_an_item_partly_returned_stays_bought_and_one_returned_in_full_does_not() -> None:
    data = data_at_cutoff(returns_shop())
    # a0 kept 8 of the 12 B0 (one purchase line), none of the B1; V0 is the vintage item
    # a0 never bought (customer n leaves out item n % 5)
    assert row_of(data, "a0", "purchases") == {"V1": 1.0, "V2": 1.0, "V3": 1.0, "V4": 1.0, "B0": 1.0}
    assert set(row_of(data, "a0", "repeat_score")) == {"V1", "V2", "V3", "V4", "B0"}
    # B0's buy-again score is its one purchase line decayed over the 19 days to the cutoff
    assert row_of(data, "a0", "repeat_score")["B0"] == pytest.approx(0.5 ** (19 / 90), rel=1e-6)

    discovery = make_protocol("discovery", data, one_time_items=data.item_ids == "")
    user = list(data.user_ids).index("a0")
    excluded = {str(data.item_ids[i]) for i in discovery.excluded[user].indices}
    # neither B0 nor B1 is new to a0: discovery leaves both out, though B1 came back in full
    assert excluded == {"V1", "V2", "V3", "V4", "B0", "B1"}
    assert set(row_of(data, "a0", "ever_bought")) == excluded

    # the mixed order is one basket holding B0 only (a0's latest)
    baskets = data.baskets.tocsr()
    latest = max(i for i, u in enumerate(data.basket_user) if data.user_ids[u] == "a0")
    assert {str(data.item_ids[i]) for i in baskets[latest].indices} == {"B0"}


def test_the_service_offers_neither_kept_nor_returned_purchases_as_new_and_buys_again_only_kept() -> None:
    """a0 bought V1-V4, B0 (kept 8 of 12) and B1 (sent back): of the ten items, only V0,
    B2, B3 and B4 are new to them. Buy-again offers what they kept, never B1."""
    tables = returns_shop()
    data = data_at_cutoff(tables)
    model = fit_hybrid(data, tables[c.ORDERS], None, RecommenderSettings(), components={"bm25", "buy_again"})
    model.blends = {protocol: {"bm25": 1.0} for protocol in ("discovery", "business_rules")}
    model.blends["all_purchases"] = {"buy_again": 1.0}
    answers = recommendations_for(model, tables)

    new = answers.recommend("a0", 4, purchased="exclude")
    assert new.personalized
    assert {item.item_id for item in new.items} == {"V0", "B2", "B3", "B4"}
    again = answers.recommend("a0", 5, purchased="include")
    assert {item.item_id for item in again.items} == {"V1", "V2", "V3", "V4", "B0"}
