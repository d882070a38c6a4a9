"""Offline evaluation: ranking metrics worked out by hand, and what each protocol masks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from tests.style import style_data, style_shop
from training.recommender.evaluate import Protocol, effective_truth, make_protocol
from training.recommender.metrics import per_user_ndcg, ranking_metrics


def test_ranking_metrics_by_hand() -> None:
    ranked = np.array([[3, 1, 4, 0, 2], [0, 1, 2, 3, 4]])
    truth = [np.array([1, 2]), np.array([9])]
    result = ranking_metrics(ranked, truth, ks=(5,))
    # user 0: hits at ranks 2 and 5; user 1: none
    dcg = 1 / np.log2(3) + 1 / np.log2(6)
    ideal = 1 + 1 / np.log2(3)
    assert result["ndcg_at_5"] == pytest.approx((dcg / ideal + 0) / 2)
    assert result["precision_at_5"] == pytest.approx((2 / 5 + 0) / 2)
    assert result["recall_at_5"] == pytest.approx((1 + 0) / 2)
    assert result["map_at_5"] == pytest.approx(((1 / 2 + 2 / 5) / 2 + 0) / 2)
    assert result["hit_rate_at_5"] == pytest.approx(0.5)


def test_each_users_ndcg_by_hand_and_for_no_users() -> None:
    """Per user, as the bootstrap reads it; a protocol with nobody to judge (nothing new
    bought in the test weeks) gets an empty array, not an error."""
    ranked = np.array([[3, 1, 4, 0, 2], [0, 1, 2, 3, 4]])
    found = per_user_ndcg(ranked, [np.array([1, 2]), np.array([9])], k=5)
    ideal = 1 + 1 / np.log2(3)
    np.testing.assert_allclose(found, [(1 / np.log2(3) + 1 / np.log2(6)) / ideal, 0.0])
    assert per_user_ndcg(np.zeros((0, 10), np.int64), [], k=10).shape == (0,)


def test_discovery_removes_earlier_purchases_from_candidates_and_truth() -> None:
    data = style_data(style_shop())
    protocol = make_protocol("discovery", data, np.zeros(data.n_items, bool))
    user = data.user_ids.tolist().index("new_a")
    v0 = data.item_ids.tolist().index("V0")
    assert protocol.excluded[user, v0]

    truth = SimpleNamespace(user_index=np.array([user]), items=[np.array([v0, v0 + 1])])
    assert effective_truth(truth, protocol)[0].tolist() == [v0 + 1]  # type: ignore[arg-type]
    everything = make_protocol("all_purchases", data, np.zeros(data.n_items, bool))
    assert everything.excluded.nnz == 0


def test_each_truth_without_what_the_protocol_stores_for_its_user() -> None:
    """All users at once, as one `setdiff1d` per user gives it: every item stored in the
    user's row of the exclusions leaves (an explicitly stored False too, as the row's
    entries always did), the rest sorted and unique; a user with nothing stored keeps their
    truth as it was."""
    excluded = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], bool))
    excluded.data[1] = False  # stored, valued False: (0, 3)
    protocol = Protocol("rules", excluded)
    truth = SimpleNamespace(
        user_index=np.array([2, 0, 1]),
        items=[np.array([4, 0, 4, 2]), np.array([3, 1, 2]), np.array([4, 4, 0])],
    )
    result = effective_truth(truth, protocol)  # type: ignore[arg-type]
    assert [items.tolist() for items in result] == [[2, 4], [2], [4, 4, 0]]
    assert result[2] is truth.items[2]

    rng = np.random.default_rng(5)
    for _ in range(200):
        n_users, n_items = int(rng.integers(1, 40)), int(rng.integers(1, 60))
        stored = sp.csr_matrix(rng.random((n_users, n_items)) < rng.uniform(0, 0.3))
        stored.data[rng.random(stored.nnz) < 0.3] = False
        users = rng.choice(n_users, size=int(rng.integers(0, n_users + 1)), replace=False)
        truth = SimpleNamespace(
            user_index=users, items=[rng.integers(0, n_items, int(rng.integers(0, 6))) for _ in users]
        )
        rows = [stored.indices[stored.indptr[user] : stored.indptr[user + 1]] for user in users]
        expected = [
            np.setdiff1d(items, row) if len(row) else items
            for items, row in zip(truth.items, rows, strict=True)
        ]
        got = effective_truth(truth, Protocol("random", stored))  # type: ignore[arg-type]
        assert [items.tolist() for items in got] == [items.tolist() for items in expected]
