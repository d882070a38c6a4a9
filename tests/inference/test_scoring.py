"""The hybrid as loaded to answer: each component ranks a customer's own style first, and a
saved model scores exactly as before."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from inference.recommender.scoring import SCORING_CACHES, HybridModel
from tests.style import build_style_model


@pytest.fixture(scope="module")
def style_model() -> tuple[HybridModel, dict[str, pd.DataFrame]]:
    return build_style_model()


@pytest.mark.parametrize("component", ["lightfm", "ease", "bm25"])
def test_a_customer_of_one_style_gets_that_style_first(
    style_model: tuple[HybridModel, dict], component: str
) -> None:
    model, _ = style_model
    user = np.array([model.user_index["new_a"]])
    scores = model.component_scores(component, user)[0].astype(float)
    scores[model.item_index["V0"]] = -np.inf  # already bought
    top3 = [model.item_ids[i] for i in np.argsort(-scores)[:3]]
    assert all(item.startswith("V") for item in top3), f"{component}: {top3}"


def test_saved_model_gives_the_same_scores(style_model: tuple[HybridModel, dict], tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, _ = style_model
    model.save(tmp_path / "hybrid")
    loaded = HybridModel.load(tmp_path / "hybrid")
    users = np.arange(5)
    np.testing.assert_allclose(
        loaded.blend_scores(users, model.blends["discovery"]),
        model.blend_scores(users, model.blends["discovery"]),
    )
    assert list(loaded.item_ids) == list(model.item_ids)
    assert loaded.lightfm_top is None
    precomputed = dataclasses.replace(model)
    precomputed.precompute_lightfm_top()
    precomputed.save(tmp_path / "precomputed")
    reloaded = HybridModel.load(tmp_path / "precomputed")
    assert reloaded.lightfm_top is not None
    np.testing.assert_array_equal(reloaded.lightfm_top, precomputed.lightfm_top)


def test_a_pickled_model_leaves_its_scoring_caches_behind_and_scores_the_same() -> None:
    """Scoring fills caches in the model; pickled (a training run hands models to its second
    process from another thread, while this one may be scoring with them and filling those
    caches), it keeps its fields and indexes alone, and scores as before."""
    model, _ = build_style_model()  # its own: the fixture's model is shared
    fields = {field.name for field in dataclasses.fields(model)} | {"user_index", "item_index"}
    users = np.arange(5)
    before = {protocol: model.blend_scores(users, weights) for protocol, weights in model.blends.items()}
    for name in model.available:
        model.component_ranks(name, users)
    model.candidate_ranks(users[:1], None, model.available)  # one customer: the service's path
    model.item_vectors_normalized()
    assert set(vars(model)) - fields == set(SCORING_CACHES)  # every cache scoring fills is listed

    copy = pickle.loads(pickle.dumps(model))
    assert set(vars(copy)) == fields
    for protocol, weights in model.blends.items():
        np.testing.assert_array_equal(copy.blend_scores(users, weights), before[protocol])


def test_rows_ranked_at_once_are_the_lists_ranked_one_by_one() -> None:
    """A customer's sparse scores ranked: positive, not blocked, best first, equal scores to
    the lower item, cut at `candidates`. By hand, then against `_rank_row` one row at a time
    on random rows with many ties, blocked items, stored zeros and negatives, and rows
    longer than the cut, a tie across it among them (there the tied items kept are the
    partition's choice: the same either way)."""
    model, _ = build_style_model()
    model = dataclasses.replace(model, candidates=3)
    matrix = sp.csr_matrix(np.array([[0.5, 0, 0.5, 0.9, 0.2, -1], [0, 0, 0, 0, 0, 0]], np.float32))
    ranked = model._rank_rows(matrix, [np.array([3]), np.zeros(0, np.int64)])
    assert [columns.tolist() for columns, _ in ranked] == [[0, 2, 4], []]
    np.testing.assert_allclose(ranked[0][1], 1 / (np.arange(3) + model.rank_offset))

    rng = np.random.default_rng(4)
    ties_across_the_cut = 0
    for _ in range(60):
        n_rows, n_items = int(rng.integers(0, 25)), int(rng.integers(1, 40))
        dense = np.round(rng.normal(0.3, 0.4, (n_rows, n_items)), 1) * (rng.random((n_rows, n_items)) < 0.6)
        matrix = sp.csr_matrix(dense.astype(np.float32))
        matrix.data[rng.random(matrix.nnz) < 0.05] = 0  # stored zeros
        blocked = None
        if rng.random() < 0.5:
            blocked = [rng.choice(n_items, int(rng.integers(0, 4))) for _ in range(n_rows)]
        one_by_one = [
            model._rank_row(matrix.indices[a:b], matrix.data[a:b], None if blocked is None else blocked[row])
            for row, (a, b) in enumerate(zip(matrix.indptr[:-1], matrix.indptr[1:], strict=True))
        ]
        at_once = model._rank_rows(matrix, blocked)
        assert len(at_once) == n_rows
        for (columns, values), (expected_columns, expected_values) in zip(at_once, one_by_one, strict=True):
            assert columns.dtype == expected_columns.dtype
            np.testing.assert_array_equal(columns, expected_columns)
            np.testing.assert_array_equal(values, expected_values)
        if n_items > 3:
            best = np.sort(np.where(dense > 0, dense, 0), axis=1)[:, ::-1]
            ties_across_the_cut += int(((best[:, 2] == best[:, 3]) & (best[:, 3] > 0)).sum())
    assert ties_across_the_cut > 20  # the per-row path is exercised
