"""The test comparison's rankings in parts that both processes take, and the protocols
whose hybrid answers are another's sharing its evaluation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from inference.recommender.scoring import lightfm_top_items
from storewise.config import CONFIG_DIR
from storewise.settings import load_recommender_settings
from training.recommender.background import BackgroundJobs, submit_top_items, take_top_items
from training.recommender.comparison import same_answers, submit_ranking, take_ranking
from training.recommender.data import TrainData
from training.recommender.evaluate import BATCH, KS, PROTOCOLS, Protocol, batch_aligned_parts
from training.recommender.models import LightFmHybrid, Recommender


class FixedScores(Recommender):
    """Scores read from a matrix (module level: pickled into the other process)."""

    name = "fixed"

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def fit(self, data: TrainData) -> FixedScores:
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.scores[users]


@pytest.mark.parametrize("background", [True, False])
def test_parts_ranked_anywhere_stack_into_every_users_best_items(background: bool) -> None:
    """Each protocol's rows, in the users' order, are the 20 best allowed items: worked out
    here by a stable sort (equal scores to the lower item, as the ranking breaks them). 1,300
    users make parts of several batches; rounded scores make ties; no user or one makes one
    part."""
    rng = np.random.default_rng(3)
    n_items = 60
    scores = np.round(rng.random((1500, n_items)), 1).astype(np.float32)
    excluded = sp.csr_matrix(rng.random((1500, n_items)) < 0.3)
    protocols = {
        "open": Protocol("open", sp.csr_matrix((1500, n_items), dtype=bool)),
        "masked": Protocol("masked", excluded),
    }
    with BackgroundJobs(background=background) as jobs:
        for n_users in (1300, 0, 1):
            users = rng.choice(1500, n_users, replace=False)
            keys = submit_ranking(jobs, f"fixed, {n_users}", FixedScores(scores), users, protocols)
            ranked = take_ranking(jobs, keys)
            assert len(keys) == (2 if n_users > 1 else 1)
            for name, protocol in protocols.items():
                masked = np.where(protocol.excluded[users].toarray(), -np.inf, scores[users])
                expected = np.argsort(-masked, axis=1, kind="stable")[:, : max(KS)]
                assert ranked[name].shape == (n_users, max(KS))
                np.testing.assert_array_equal(ranked[name], expected)


def test_protocols_with_the_same_exclusions_and_answer_share_an_evaluation() -> None:
    """Business rules shares all purchases' evaluation when it excludes the same items and
    answers with the same blend or the same reranker; a different blend, reranker or
    exclusion keeps its own. Discovery excludes what was bought: its own always."""
    bought = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1]], bool))
    nothing = sp.csr_matrix((2, 3), dtype=bool)
    protocols = {
        "discovery": Protocol("discovery", bought),
        "all_purchases": Protocol("all_purchases", nothing),
        "business_rules": Protocol("business_rules", nothing.copy()),
    }
    blend = {"ease": 1.0, "popularity": 0.5}
    same_blend = SimpleNamespace(blends=dict.fromkeys(PROTOCOLS, blend), rerankers={})
    assert same_answers(same_blend, protocols) == {"business_rules": "all_purchases"}  # type: ignore[arg-type]

    other_blend = SimpleNamespace(
        blends={**dict.fromkeys(PROTOCOLS, blend), "business_rules": {"ease": 1.0}}, rerankers={}
    )
    assert same_answers(other_blend, protocols) == {}  # type: ignore[arg-type]

    trees, other_trees = object(), object()
    # the same reranker answers both: the blends (not read) may differ
    one_reranker = SimpleNamespace(
        blends=other_blend.blends, rerankers={"all_purchases": trees, "business_rules": trees}
    )
    assert same_answers(one_reranker, protocols) == {"business_rules": "all_purchases"}  # type: ignore[arg-type]
    for rerankers in ({"all_purchases": trees}, {"all_purchases": trees, "business_rules": other_trees}):
        hybrid = SimpleNamespace(blends=same_blend.blends, rerankers=rerankers)
        assert same_answers(hybrid, protocols) == {}  # type: ignore[arg-type]

    one_time_item = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]], bool))
    one_time = dict(protocols, business_rules=Protocol("business_rules", one_time_item))
    assert same_answers(same_blend, one_time) == {}  # type: ignore[arg-type]
    # the same exclusions as discovery: business rules shares discovery's
    everything = dict(protocols, business_rules=Protocol("business_rules", bought.copy()))
    assert same_answers(same_blend, everything) == {"business_rules": "discovery"}  # type: ignore[arg-type]


def test_parts_are_cut_between_the_batches_one_call_would_score() -> None:
    """A model's scores may depend on a batch's shape, so the parts are cut only between
    `BATCH`-sized batches: every part but the last is whole batches, and stacked they are the
    users in order; one part under two batches' worth, and one (empty) part for no user."""
    for n_users in (0, 1, BATCH - 1, BATCH, BATCH + 1, 2 * BATCH + 2, 4113):
        users = np.arange(n_users) * 7
        parts = batch_aligned_parts(users, 2)
        np.testing.assert_array_equal(np.concatenate(parts), users)
        assert 1 <= len(parts) <= 2
        assert all(len(part) % BATCH == 0 and len(part) for part in parts[:-1])
        assert len(parts) == (2 if n_users > BATCH else 1)
    assert [len(part) for part in batch_aligned_parts(np.arange(4113), 2)] == [5 * BATCH, 4113 - 5 * BATCH]


@pytest.mark.parametrize("background", [True, False])
def test_top_items_in_parts_stack_into_everyones_best_items_by_lightfm(background: bool) -> None:
    """The final fit's LightFM top items, as spare parts taken in any order by either process,
    stack into exactly what one call over every customer gives (`lightfm_top_items`), each
    row the 30 best items by embedding product plus bias (a stable sort here on the same
    float32 scores). 6,000 customers make six parts of one batch; none or one make one."""
    rng = np.random.default_rng(5)
    n_items = 80
    for n_users, expected_parts in ((6000, 6), (0, 1), (1, 1)):
        model = LightFmHybrid(load_recommender_settings(CONFIG_DIR).lightfm, epochs=1)
        model.user_embedding = rng.normal(size=(n_users, 8)).astype(np.float32)
        model.item_embedding = rng.normal(size=(n_items, 8)).astype(np.float32)
        model.item_bias = np.round(rng.normal(size=n_items), 1).astype(np.float32)
        with BackgroundJobs(background=background) as jobs:
            keys = submit_top_items(jobs, f"lightfm, {n_users}", model, 30)
            assert len(keys) == expected_parts
            take_top_items(jobs, keys, model)
        at_once = lightfm_top_items(model.user_embedding, model.item_embedding, model.item_bias, 30)
        assert model.top_items is not None
        assert model.top_items.shape == (n_users, 30)
        np.testing.assert_array_equal(model.top_items, at_once)
        scores = model.user_embedding @ model.item_embedding.T + model.item_bias
        np.testing.assert_array_equal(model.top_items, np.argsort(-scores, axis=1, kind="stable")[:, :30])
