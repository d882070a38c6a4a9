"""A return takes an item off a customer's purchases only when the whole quantity came back
(training/recommender/data.py): what the discovery protocol leaves out, what the service
calls bought, and the baskets and buy-again scores built from them."""

from __future__ import annotations

import pandas as pd
import pytest

from features.item_features import item_features
from storewise import columns as c
from storewise.settings import InteractionWeights
from tests.style import TZ, style_shop
from training.recommender.data import TrainData, build_train_data
from training.recommender.evaluate import make_protocol

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
    assert excluded == {"V1", "V2", "V3", "V4", "B0"}  # B0 is not new to a0; B1 came back

    # the mixed order is one basket holding B0 only (a0's latest)
    baskets = data.baskets.tocsr()
    latest = max(i for i, u in enumerate(data.basket_user) if data.user_ids[u] == "a0")
    assert {str(data.item_ids[i]) for i in baskets[latest].indices} == {"B0"}
