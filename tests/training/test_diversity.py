"""The NDCG cost of a diversity cap, on lists whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.recommender.diversity import capped, diversity_costs, ndcg


def test_the_cap_walks_down_the_ranking_and_ndcg_is_the_textbook_one() -> None:
    categories = np.array(["ring", "ring", "ring", "chain", "chain", "box"])
    ranked = np.array([[0, 1, 2, 3, 4, 5]])
    assert capped(ranked, categories, None, 3).tolist() == [[0, 1, 2]]
    assert capped(ranked, categories, 1, 3).tolist() == [[0, 3, 5]]
    assert capped(ranked, categories, 2, 4).tolist() == [[0, 1, 3, 4]]
    assert capped(ranked, categories, 1, 4).tolist() == [[0, 3, 5, -1]], "three categories fill three places"
    # bought item 1 (rank 2 uncapped): 1/log2(3); capped at one ring it is gone
    assert ndcg(np.array([[0, 1, 2]]), [np.array([1])], 3)[0] == pytest.approx(1 / np.log2(3))
    assert ndcg(np.array([[0, 3, 5]]), [np.array([1])], 3)[0] == 0
    # bought 3 and 5: ideal 1 + 1/log2(3); capped list has them at ranks 2 and 3
    expected = (1 / np.log2(3) + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert ndcg(np.array([[0, 3, 5]]), [np.array([3, 5])], 3)[0] == pytest.approx(expected)


def test_costs_have_paired_intervals_and_no_cap_costs_nothing() -> None:
    rng = np.random.default_rng(0)
    categories = np.repeat(np.array(["a", "b", "c", "d"]), 5)
    ranked = np.array([rng.permutation(20) for _ in range(300)])
    truth = [row[:2] for row in ranked]  # each customer bought their two best: the cap can only cost
    costs = {cost.cap: cost for cost in diversity_costs(ranked, truth, categories, (None, 2, 1), k=5)}
    assert costs[None].difference == 0
    assert costs[None].low == costs[None].high == 0
    assert costs[1].difference <= costs[2].difference <= 0
    assert costs[1].low <= costs[1].difference <= costs[1].high
    assert costs[1].categories_per_list == 4
