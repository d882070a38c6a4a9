"""The season component's item-item matrix (`hybrid.season_similarity`): learned from
recent co-purchases, so what goes together lately outranks what went together a year ago."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from storewise.settings import ComponentSettings
from training.recommender.hybrid import season_similarity
from training.recommender.models import ItemKnnBm25

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
