"""Each row's k best columns: the sampled floor's fast path and the full partition give what
a full sort gives (best first, equal scores to the lower column), on scores shaped like
every model's: dense, sparse with ties at zero, few distinct values, blocked at -inf."""

from __future__ import annotations

import numpy as np
import pytest

from inference.recommender.topk import top_k, top_k_by_partition


def full_sort(scores: np.ndarray, k: int) -> np.ndarray:
    """The answer by sorting every row completely: by score descending, then by column."""
    columns = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    return np.lexsort((columns, -scores), axis=1)[:, : min(k, scores.shape[1])]


def test_a_worked_example_ties_go_to_the_lower_column() -> None:
    scores = np.array(
        [
            [0.0, 3.0, 1.0, 3.0, 0.0, 2.0],  # a tie at the top and at the cut
            [0.0, 0.0, 0.0, 0.0, 0.0, 5.0],  # the cut inside the zeros
            [-np.inf, 1.0, -np.inf, -np.inf, 2.0, -np.inf],  # fewer finite scores than k
        ],
        np.float32,
    )
    expected = [[1, 3, 5, 2], [5, 0, 1, 2], [4, 1, 0, 2]]
    assert top_k(scores, 4).tolist() == expected
    assert top_k_by_partition(scores, 4).tolist() == expected


def shaped_scores(kind: str, rows: int, columns: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "dense":
        return rng.normal(size=(rows, columns))
    if kind == "sparse":  # a history-based model: most items at zero
        return np.where(rng.random((rows, columns)) < rng.uniform(0, 0.05), rng.random((rows, columns)), 0)
    if kind == "counts":  # few distinct values: ties everywhere
        return rng.integers(0, 4, size=(rows, columns)).astype(float)
    scores = rng.normal(size=(rows, columns))  # blocked items
    scores[rng.random((rows, columns)) < rng.uniform(0, 1)] = -np.inf
    return scores


@pytest.mark.parametrize("kind", ["dense", "sparse", "counts", "blocked"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_paths_give_what_a_full_sort_gives(kind: str, dtype: type) -> None:
    rng = np.random.default_rng(3)
    for _ in range(60):
        rows, columns, k = int(rng.integers(1, 30)), int(rng.integers(1, 6000)), int(rng.integers(1, 250))
        scores: np.ndarray = shaped_scores(kind, rows, columns, rng).astype(dtype)
        expected = full_sort(scores, k)
        np.testing.assert_array_equal(top_k(scores, k), expected)
        np.testing.assert_array_equal(top_k_by_partition(scores, min(k, columns)), expected)


def test_empty_shapes() -> None:
    assert top_k(np.zeros((0, 5)), 3).shape == (0, 3)
    assert top_k(np.zeros((2, 0)), 3).shape == (2, 0)
