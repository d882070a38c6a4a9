"""The learned reranker as the service runs it: the exported trees predict exactly what
scikit-learn's classifier does, a protocol with a reranker answers in the trees' order,
and a saved model keeps its rerankers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from inference.recommender.rerank import CONTEXT, Reranker, TreeEnsemble, customer_context, union_candidates
from inference.recommender.scoring import HybridModel
from tests.style import build_style_model, recommendations_for
from training.recommender.rerank import export_trees


def test_exported_trees_predict_what_scikit_learn_does() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((20_000, 7)).astype(np.float32)
    x[:, 3] = rng.integers(0, 4, len(x))  # ties at the thresholds
    bought = rng.random(len(x)) < 0.02 + 0.3 * (x[:, 0] > 0.7) * (x[:, 3] >= 2)
    model = HistGradientBoostingClassifier(
        max_iter=40, max_leaf_nodes=7, max_depth=4, min_samples_leaf=50, early_stopping=False, random_state=0
    ).fit(x, bought)
    trees = export_trees(model)
    assert len(trees.roots) == 40
    assert trees.depth <= 4
    probe = rng.random((3_000, 7)).astype(np.float32)
    probe[:, 3] = rng.integers(0, 4, len(probe))
    np.testing.assert_allclose(
        trees.probability(probe), model.predict_proba(probe)[:, 1], rtol=1e-5, atol=1e-7
    )


def one_split(feature: int, threshold: float, below: float, above: float) -> TreeEnsemble:
    """One tree: `below` where the feature is at most `threshold`, else `above` (log-odds)."""
    return TreeEnsemble(
        feature=np.array([feature, 0, 0], np.int32),
        threshold=np.array([threshold, np.inf, np.inf]),
        left=np.array([1, 1, 2], np.int32),
        right=np.array([2, 1, 2], np.int32),
        value=np.array([0.0, below, above]),
        roots=np.array([0], np.int32),
        baseline=0.0,
        depth=1,
    )


@pytest.fixture(scope="module")
def reranked_model() -> tuple[HybridModel, dict]:
    """The style shop's hybrid whose discovery is answered by one split: items EASE ranks
    for the customer are likely (log-odds +3), every other item unlikely (-3)."""
    model, tables = build_style_model()
    components = ["ease", "bm25", "popularity"]
    model.rerankers = {"discovery": Reranker(components, one_split(0, 0.0, -3.0, 3.0), {})}
    return model, tables


def test_customer_context_counts_baskets_days_and_items() -> None:
    import scipy.sparse as sp

    bought = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0], [0, 1, 0]], np.float32))
    context = customer_context(np.array([0, 0, 2]), np.array([30.0, 4.0, 12.0]), bought)
    np.testing.assert_array_equal(context[0], [2, 4, 2])
    np.testing.assert_array_equal(context[2], [1, 12, 1])
    assert context[1, 0] == 0
    assert context[1, 1] > 365
    assert context[1, 2] == 0


def test_a_reranked_protocol_answers_in_the_trees_order(reranked_model: tuple[HybridModel, dict]) -> None:
    model, tables = reranked_model
    user = int(model.user_index["new_a"])
    # every candidate EASE ranks scores sigmoid(3), every other candidate sigmoid(-3), plus
    # the popularity tie-break; items no component ranks score the tie-break alone
    candidates, values = model.candidate_ranks(
        np.array([user]), [np.array([model.item_index["V0"]])], ["ease", "bm25", "popularity"]
    )
    ease_ranked = {
        model.item_ids[i] for i, v in zip(candidates[0], values["ease"][0], strict=True) if i >= 0 and v > 0
    }
    assert ease_ranked == {"V1", "V2", "V3", "V4"}  # what new_a's one vintage ring goes with
    scores = model.protocol_scores(np.array([user]), "discovery", [np.array([model.item_index["V0"]])])[0]
    high, low = 1 / (1 + np.exp(-3.0)), 1 / (1 + np.exp(3.0))
    for item in ("V1", "V2", "V3", "V4"):
        assert scores[model.item_index[item]] == pytest.approx(high, abs=1e-6)
    for item in ("B0", "B3"):  # candidates through popularity, not EASE
        assert scores[model.item_index[item]] == pytest.approx(low, abs=1e-6)
    answers = recommendations_for(model, tables)
    discovery = answers.recommend("new_a", 6, purchased="exclude")
    assert {r.item_id for r in discovery.items[:4]} == {"V1", "V2", "V3", "V4"}
    assert all(r.item_id.startswith("B") for r in discovery.items[4:])
    # the same answer through the batch path (all items scored)
    batch = answers.recommend_many(["new_a"], 6, purchased="exclude")[0]
    assert [r.item_id for r in batch.items] == [r.item_id for r in discovery.items]


def test_the_trees_read_the_customer_context(reranked_model: tuple[HybridModel, dict]) -> None:
    """A split on the customer's baskets: the same items, the other side of the split."""
    model, _ = reranked_model
    baskets = len(["ease", "bm25", "popularity"]) + CONTEXT.index("customer_baskets")
    user = np.array([int(model.user_index["new_a"])])  # one basket: log(2) = 0.69
    for threshold, expected in ((1.0, -2.0), (0.5, 2.0)):
        trees = one_split(baskets, threshold, -2.0, 2.0)
        model_with = dataclasses.replace(
            model, rerankers={"discovery": Reranker(["ease", "bm25", "popularity"], trees, {})}
        )
        candidates, probability = model_with.reranked(user, model_with.rerankers["discovery"])
        assert np.allclose(probability[0][candidates[0] >= 0], 1 / (1 + np.exp(-expected)))


def test_a_saved_model_keeps_its_rerankers(reranked_model: tuple[HybridModel, dict], tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, _ = reranked_model
    model.save(tmp_path / "hybrid")
    loaded = HybridModel.load(tmp_path / "hybrid")
    assert list(loaded.rerankers) == ["discovery"]
    assert loaded.rerankers["discovery"].components == ["ease", "bm25", "popularity"]
    users = np.arange(6)
    np.testing.assert_array_equal(loaded.customer_context, model.customer_context)
    np.testing.assert_allclose(
        loaded.protocol_scores(users, "discovery"), model.protocol_scores(users, "discovery")
    )
    np.testing.assert_allclose(
        loaded.protocol_scores(users, "all_purchases"),
        model.blend_scores(users, model.blends["all_purchases"]),
    )


def test_one_customer_gets_the_candidates_and_ranks_of_a_batch(
    reranked_model: tuple[HybridModel, dict],
) -> None:
    """The service's one-customer path and the batch path (what the trees were fitted on)
    give the same candidates and rank scores, with and without blocked items."""
    model, _ = reranked_model
    components = ["ease", "bm25", "buy_again", "lightfm", "popularity", "trending"]
    users = np.arange(8)
    for blocked in (None, [np.array([u % model.n_items, (u + 3) % model.n_items]) for u in users]):
        batch_candidates, batch_values = model.candidate_ranks(users, blocked, components)
        for row, user in enumerate(users):
            one_blocked = None if blocked is None else [blocked[row]]
            candidates, values = model.candidate_ranks(np.array([user]), one_blocked, components)
            real = batch_candidates[row] >= 0
            np.testing.assert_array_equal(candidates[0], batch_candidates[row][real])
            for name in components:
                np.testing.assert_allclose(values[name][0], batch_values[name][row][real])


def test_candidates_are_every_ranked_or_popular_item_with_each_components_rank_scores() -> None:
    """By hand, then on random matrices against dense indexing: each customer's candidates
    are the items some component ranks (a positive entry) and the popular items, ascending,
    -1 padded; each component's value is its entry there (0 where it has none, and on
    padding). A stored zero or negative entry makes no candidate."""
    import scipy.sparse as sp

    ease = sp.csr_matrix(np.array([[0, 0.5, 0, 0, 0.25], [0, 0, 0, 0, 0]], np.float32))
    trending = sp.csr_matrix(np.array([[0, 0, 0.1, 0, 0], [0, 0, 0.1, 0, 0]], np.float32))
    candidates, values = union_candidates({"ease": ease, "trending": trending}, np.array([3]), 5)
    np.testing.assert_array_equal(candidates, [[1, 2, 3, 4], [2, 3, -1, -1]])
    np.testing.assert_array_equal(values["ease"], [[0.5, 0, 0, 0.25], [0, 0, 0, 0]])
    np.testing.assert_array_equal(values["trending"], np.array([[0, 0.1, 0, 0], [0.1, 0, 0, 0]], np.float32))

    rng = np.random.default_rng(8)
    for _ in range(50):
        n_users, n_items = int(rng.integers(0, 30)), int(rng.integers(1, 80))
        ranks = {}
        for name in ("a", "b", "c"):
            dense = np.where(rng.random((n_users, n_items)) < 0.1, rng.random((n_users, n_items)), 0)
            matrix = sp.csr_matrix(dense.astype(np.float32))
            matrix.data[rng.random(matrix.nnz) < 0.1] = 0  # stored, not ranked
            for row in range(n_users):  # a component's rows are stored in rank order, not by item
                start, stop = matrix.indptr[row], matrix.indptr[row + 1]
                order = start + rng.permutation(stop - start)
                matrix.indices[start:stop], matrix.data[start:stop] = (
                    matrix.indices[order],
                    matrix.data[order],
                )
            matrix.has_sorted_indices = False
            ranks[name] = matrix
        popular = rng.choice(n_items, min(3, n_items), replace=False)
        candidates, values = union_candidates(ranks, popular, n_items)
        wanted = np.zeros((n_users, n_items), bool)
        wanted[:, popular] = True
        for matrix in ranks.values():
            wanted |= matrix.toarray() > 0
        for row in range(n_users):
            real = candidates[row] >= 0
            np.testing.assert_array_equal(candidates[row][real], np.flatnonzero(wanted[row]))
            for name, matrix in ranks.items():
                dense_row = matrix.toarray()[row]
                np.testing.assert_array_equal(values[name][row][real], dense_row[candidates[row][real]])
                assert not values[name][row][~real].any()
