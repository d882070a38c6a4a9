"""What every recommender (the hybrid's blends, LightFM, the baselines and the peers) must
do, checked on a tiny shop whose right answers are known (tests/style.py): fit, score every
item, score the same way twice, break ties by item index, save and load, and beat the
popularity baseline at telling the two styles apart."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from inference.recommender.topk import top_k
from storewise.settings import (
    AlsSettings,
    ComponentSettings,
    LightFmSettings,
    PeerSettings,
    RecommenderSettings,
)
from tests.style import build_style_model, style_data, style_shop
from training.recommender.data import TrainData
from training.recommender.hybrid import BlendView
from training.recommender.models import LightFmHybrid, Recommender
from training.recommender.trainer import peers

SETTINGS = RecommenderSettings(
    lightfm=LightFmSettings(components=8, learning_rate=0.05, threads=1, seed=3),
    components=ComponentSettings(
        ease_regularization=5, bm25_neighbours=10, item_neighbours=10, max_ease_items=100, threads=1
    ),
    peers=PeerSettings(cooccurrence_neighbours=10, als=AlsSettings(factors=4, iterations=20, seed=3)),
)


def factories() -> dict[str, Callable[[], Recommender]]:
    made: dict[str, Callable[[], Recommender]] = {}
    for index, model in enumerate(peers(10, SETTINGS)):
        made[model.name] = lambda index=index: peers(10, SETTINGS)[index]  # type: ignore[misc]
    made["lightfm"] = lambda: LightFmHybrid(SETTINGS.lightfm, epochs=30)
    for protocol in ("discovery", "all_purchases"):
        made[f"hybrid_{protocol}"] = lambda protocol=protocol: BlendView(build_style_model()[0], protocol)  # type: ignore[misc]
    return made


FACTORIES = factories()
# the baselines score everyone alike; buy_again and repurchase (timing) recommend what was
# bought, then popularity (buy_again's own floor below)
NOT_PERSONAL = {"popularity", "trending", "buy_again", "repurchase"}


@pytest.fixture(scope="module")
def data() -> TrainData:
    return style_data(style_shop())


def test_every_model_of_the_comparison_is_covered() -> None:
    assert {"popularity", "trending", "cooccurrence", "buy_again", "lightfm", "hybrid_discovery"} <= set(
        FACTORIES
    )
    assert {"ease_binary", "ease_counts", "item_knn_bm25_binary", "als_counts"} <= set(FACTORIES)
    assert {"tifu_knn", "repurchase"} <= set(FACTORIES)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_fit_returns_the_model_and_scores_every_item(name: str, data: TrainData) -> None:
    model = FACTORIES[name]()
    assert model.fit(data) is model
    users = np.arange(data.n_users)
    scores = model.score(users)
    assert scores.shape == (data.n_users, data.n_items)
    assert np.issubdtype(scores.dtype, np.floating)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_the_same_data_gives_the_same_scores_and_ties_go_to_the_lower_item(
    name: str, data: TrainData
) -> None:
    users = np.arange(data.n_users)
    first = FACTORIES[name]().fit(data).score(users)
    second = FACTORIES[name]().fit(data).score(users)
    np.testing.assert_array_equal(first, second)
    for k in (1, 3, data.n_items):
        ranked = top_k(first, k)
        # best first; among equal scores the lower item index first, wherever the cut falls
        expected = np.array([np.lexsort((np.arange(data.n_items), -row))[:k] for row in first])
        np.testing.assert_array_equal(ranked, expected)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_a_saved_model_scores_as_the_fitted_one(name: str, data: TrainData, tmp_path: Path) -> None:
    model = FACTORIES[name]().fit(data)
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))


def own_style_first(model: Recommender, data: TrainData) -> float:
    """Share of the style customers whose best item not yet bought is of their own style."""
    customers = [
        i for i, user in enumerate(data.user_ids) if str(user)[0] in "ab" and str(user)[1:].isdigit()
    ]
    scores = model.score(np.array(customers)).astype(float)
    scores[data.purchases[customers].toarray() > 0] = -np.inf
    best = top_k(scores, 1)[:, 0]
    style = {"a": "V", "b": "B"}
    return float(
        np.mean(
            [
                str(data.item_ids[item])[0] == style[str(data.user_ids[user])[0]]
                for user, item in zip(customers, best, strict=True)
            ]
        )
    )


@pytest.mark.parametrize("name", sorted(set(FACTORIES) - NOT_PERSONAL))
def test_a_personal_model_tells_the_styles_apart_better_than_popularity(name: str, data: TrainData) -> None:
    baseline = own_style_first(FACTORIES["popularity"]().fit(data), data)
    assert baseline <= 0.6, "popularity recommends the same item to both styles"
    assert own_style_first(FACTORIES[name]().fit(data), data) >= 0.9


def test_buy_again_ranks_what_was_bought_first(data: TrainData) -> None:
    model = FACTORIES["buy_again"]().fit(data)
    users = np.arange(data.n_users)
    ranked = top_k(model.score(users), 4)
    for user in users:
        bought = set(data.purchases[user].indices.tolist())
        assert set(ranked[user, : len(bought)].tolist()) == bought or len(bought) > 4


def test_lightfm_continuing_a_model_starts_from_the_rows_both_share(data: TrainData) -> None:
    """A model at a later cutoff (here: the same shop with more customers) continuing an
    earlier one starts with its rows by customer, item and feature, and new customers
    start as LightFM starts them (zero bias)."""
    known = data.n_users // 2
    earlier = dataclasses.replace(
        data,
        user_ids=data.user_ids[:known],
        weights=data.weights[:known],
        user_features=data.user_features[:known],
    )
    first = LightFmHybrid(SETTINGS.lightfm, epochs=5).fit(earlier)
    taken_over = LightFmHybrid(SETTINGS.lightfm, epochs=0).fit(data, start_from=first)
    np.testing.assert_array_equal(taken_over.item_embedding, first.item_embedding)
    np.testing.assert_array_equal(taken_over.item_bias, first.item_bias)
    np.testing.assert_array_equal(taken_over.user_embedding[:known], first.user_embedding)
    assert not taken_over.model.user_biases[known : data.n_users].any()
    assert taken_over.params()["epochs"] == 5
    continued = LightFmHybrid(SETTINGS.lightfm, epochs=3).fit(data, start_from=first)
    assert continued.params()["epochs"] == 8
    assert not np.allclose(continued.item_embedding, first.item_embedding)


def test_rows_the_continued_model_lacks_come_from_the_fallback(data: TrainData) -> None:
    """The final fit continuing the test weeks' LightFM, which knows no item launched after
    their start: those items' rows come from the latest fold's model (the whole catalogue),
    the rest from the model continued."""
    launched = data.n_items - 2
    test_weeks = dataclasses.replace(
        data,
        item_ids=data.item_ids[:launched],
        weights=data.weights[:, :launched],
        item_features=data.item_features[:launched],
    )
    latest_fold = LightFmHybrid(SETTINGS.lightfm, epochs=3).fit(data)
    continued = LightFmHybrid(SETTINGS.lightfm, epochs=2).fit(test_weeks, start_from=latest_fold)
    final = LightFmHybrid(SETTINGS.lightfm, epochs=0).fit(
        data, start_from=continued, fallbacks=(latest_fold,)
    )
    rows = {name: data.n_items for name in ("item_embeddings", "item_biases")}
    for name in rows:
        taken = getattr(final.model, name)
        np.testing.assert_array_equal(taken[:launched], getattr(continued.model, name)[:launched])
        np.testing.assert_array_equal(
            taken[launched : data.n_items], getattr(latest_fold.model, name)[launched : data.n_items]
        )
    without = LightFmHybrid(SETTINGS.lightfm, epochs=0).fit(data, start_from=continued)
    assert not without.model.item_biases[launched : data.n_items].any()  # LightFM's own start
    assert final.params()["epochs"] == 5
