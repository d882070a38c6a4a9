"""Offline evaluation: ranking metrics worked out by hand, and what each protocol masks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.style import style_data, style_shop
from training.recommender.evaluate import effective_truth, make_protocol
from training.recommender.metrics import ranking_metrics


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
