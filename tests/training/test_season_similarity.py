"""The season component's item-item matrix (`hybrid.season_similarity`): learned from
recent co-purchases, so what goes together lately outranks what went together a year ago."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from storewise import columns as c
from storewise.settings import ComponentSettings, RecommenderSettings
from tests.style import TZ, style_data, style_shop
from training.recommender.hybrid import fit_hybrid, season_similarity
from training.recommender.models import ItemKnnBm25, binarize

A, B, C, D = 0, 1, 2, 3  # D: bought by everyone a year ago
ITEMS = 50  # BM25 weighs by rarity: a catalogue where each customer buys a few items
HALF_LIFE = 60.0


def purchases(weight_of_age: bool) -> sp.csr_matrix:
    """30 customers bought A with C a year ago; 10 others bought A with B ten days ago."""
    rows, columns, ages = [], [], []
    for user in range(30):
        rows += [user, user, user]
        columns += [A, C, D]
        ages += [360.0, 360.0, 360.0]
    for user in range(30, 40):
        rows += [user, user, user]
        columns += [A, B, D]
        ages += [10.0, 10.0, 360.0]
    values = 0.5 ** (np.array(ages) / HALF_LIFE) if weight_of_age else np.ones(len(ages))
    return sp.csr_matrix((values.astype(np.float32), (rows, columns)), shape=(40, ITEMS))


def test_recent_co_purchases_outrank_old_ones() -> None:
    parts = ComponentSettings()
    season = season_similarity(purchases(weight_of_age=True), parts).toarray()
    assert season[A, B] > season[A, C] > 0
    # the same purchases counted alike (the all-time BM25 component): the year-old pairs win
    all_time = ItemKnnBm25(parts).item_similarity(purchases(weight_of_age=False)).toarray()
    assert all_time[A, C] > all_time[A, B] > 0


def test_no_recent_purchases_gives_an_empty_matrix_of_the_catalogue_size() -> None:
    empty = season_similarity(sp.csr_matrix((5, ITEMS), dtype=np.float32), ComponentSettings())
    assert empty.shape == (ITEMS, ITEMS)
    assert empty.nnz == 0 or float(abs(empty).sum()) == 0.0


def test_the_hybrid_learns_the_season_from_recent_orders_before_its_cutoff() -> None:
    """On the style shop (customers buy one style; the old purchases are January's), twenty
    boho customers lately bought V0 with B0, and after the cutoff V1 with B4."""
    tables = style_shop()
    extra = [
        (f"s{n}{item}", f"b{n}", item, 1, 30.0, pd.Timestamp(day, tz=TZ))
        for n in range(20)
        for item, day in (("V0", "2026-02-22"), ("B0", "2026-02-22"))
    ] + [
        (f"f{n}{item}", f"b{n}", item, 1, 30.0, pd.Timestamp("2026-03-10", tz=TZ))
        for n in range(20)
        for item in ("V1", "B4")
    ]
    orders = tables[c.ORDERS]
    more = pd.DataFrame(
        extra, columns=[c.ORDER_ID, c.CUSTOMER_ID, c.ITEM_ID, c.QUANTITY, c.UNIT_PRICE, c.ORDERED_AT]
    )
    tables[c.ORDERS] = pd.concat([orders, more.assign(**{c.RETURNED: False})], ignore_index=True)
    parts = ComponentSettings(bm25_neighbours=10, item_neighbours=10, max_ease_items=100)
    model = fit_hybrid(
        style_data(tables),
        tables[c.ORDERS],
        None,
        RecommenderSettings(components=parts),
        components={"season", "bm25"},
    )
    assert "season" in model.available
    at = model.item_index
    season, all_time = model.similarity["season"].toarray(), model.similarity["bm25"].toarray()
    # the recent pair weighs more against V0's old style-mates in the season's matrix
    assert (
        season[at["V0"], at["B0"]] / season[at["V0"], at["V2"]]
        > all_time[at["V0"], at["B0"]] / all_time[at["V0"], at["V2"]]
    )
    # nothing after the cutoff: V1 and B4 were never bought together before it
    assert season[at["V1"], at["B4"]] == 0
    # scored as the recent history times the season's matrix
    users = np.array([model.user_index["b0"], model.user_index["a3"]])
    expected = (model.histories["recent"][users] @ model.similarity["season"]).toarray()
    np.testing.assert_allclose(model.component_scores("season", users), expected, rtol=1e-6)
    assert (
        model.histories["recent"][users].sum() < binarize(model.histories["counts"][users]).sum()
    )  # decayed
