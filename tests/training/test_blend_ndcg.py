"""The blend tuning's NDCG@10 (`Validation.ndcg_of`, which never sorts a whole row) against
a plain per-row sort, equal scores ranked by candidate column as the test weeks' `top_k`
ranks them by item: random rows with ties (scores drawn from a few integers), blocked
candidates, rows with fewer than ten candidates, and rows with nothing relevant in reach."""

from __future__ import annotations

import numpy as np

from inference.recommender.rerank import CONTEXT
from training.recommender.blend import DISCOUNTS, FoldScores, Validation
from training.recommender.uncertainty import Bootstrap


def sorted_ndcg(
    total: np.ndarray, blocked: np.ndarray, relevant: np.ndarray, ideal: np.ndarray
) -> np.ndarray:
    values = []
    for row in range(total.shape[0]):
        scores = np.where(blocked[row], -np.inf, total[row])
        order = np.lexsort((np.arange(len(scores)), -scores))[:10]
        hits = relevant[row, order] & np.isfinite(scores[order])
        values.append(float((hits * DISCOUNTS[: len(order)]).sum() / ideal[row]))
    return np.array(values)


def test_ndcg_of_equals_a_full_sort_with_ties_by_column() -> None:
    rng = np.random.default_rng(5)
    for trial in range(200):
        users, width = int(rng.integers(1, 30)), int(rng.integers(1, 50))
        if trial % 2:
            total = rng.integers(0, 5, (users, width)).astype(np.float32)  # many ties
        else:
            total = rng.random((users, width)).astype(np.float32)
        blocked = rng.random((users, width)) < 0.3
        relevant = rng.random((users, width)) < 0.2
        sizes = np.maximum(relevant.sum(axis=1), 1)
        ideal = np.cumsum(DISCOUNTS)[np.minimum(sizes, 10) - 1]
        customers = np.arange(users).astype(str)
        fold = FoldScores(
            candidates=np.tile(np.arange(width), (users, 1)),
            values={"component": total},
            blocked=blocked,
            relevant=relevant,
            ideal=ideal,
            tie_break=np.zeros((users, width), np.float32),
            context=np.zeros((users, width, len(CONTEXT)), np.float32),
            customers=customers,
        )
        validation = Validation([fold], Bootstrap(customers, samples=10, confidence=0.9, seed=1))
        expected = sorted_ndcg(total, blocked, relevant, ideal)
        np.testing.assert_allclose(validation.ndcg({"component": 1.0}), expected, atol=1e-12)
        np.testing.assert_allclose(validation.ndcg({"component": 2.0}), expected, atol=1e-12)
