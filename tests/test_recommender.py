"""The recommender: known answers on tiny data, metrics by hand, cold start, round trips."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.item_features import item_features
from inference.recommender.answers import Context, Recommendations
from inference.recommender.scoring import HybridModel
from storewise import columns as c
from storewise.settings import BusinessRules, ComponentSettings, InteractionWeights, LightFmSettings
from training.recommender import models as m
from training.recommender.bundle import group_popularity
from training.recommender.data import build_train_data
from training.recommender.evaluate import effective_truth, make_protocol
from training.recommender.hybrid import fit_hybrid
from training.recommender.metrics import ranking_metrics

TZ = "Asia/Kuala_Lumpur"


def style_shop() -> dict[str, pd.DataFrame]:
    """Two styles of five items each. Customers 'a*' buy four of the five vintage items
    (each leaving out another, so every pair is bought together equally often), 'b*' four
    boho items; 'new_a' has bought one vintage item only."""
    items = [f"V{i}" for i in range(5)] + [f"B{i}" for i in range(5)]
    products = pd.DataFrame(
        {
            c.ITEM_ID: items,
            c.NAME: [f"vintage {i}" for i in range(5)] + [f"boho {i}" for i in range(5)],
            c.CATEGORY: "ring",
            c.TAGS: ["vintage;pearl"] * 5 + ["boho;crystal"] * 5,
            c.LIST_PRICE: np.linspace(20, 60, 10),
            c.UNIT_COST: 5.0,
            c.STOCK: 10,
        }
    )
    rows = []
    for group, style in (("a", "V"), ("b", "B")):
        for n in range(30):
            for j, item in enumerate(i for i in range(5) if i != n % 5):
                rows.append(
                    (
                        f"o{group}{n}{j}",
                        f"{group}{n}",
                        f"{style}{item}",
                        1,
                        30.0,
                        pd.Timestamp("2026-01-01", tz=TZ) + pd.Timedelta(days=int(n + j)),
                    )
                )
    rows.append(("onew", "new_a", "V0", 1, 30.0, pd.Timestamp("2026-02-15", tz=TZ)))
    orders = pd.DataFrame(
        rows, columns=[c.ORDER_ID, c.CUSTOMER_ID, c.ITEM_ID, c.QUANTITY, c.UNIT_PRICE, c.ORDERED_AT]
    )
    orders[c.RETURNED] = False
    ids = [*sorted(orders[c.CUSTOMER_ID].unique()), "no_consent", "b_only_region"]
    customers = pd.DataFrame(
        {
            c.CUSTOMER_ID: ids,
            c.REGION: ["North" if i.startswith("a") else "South" for i in ids],
            c.IS_MEMBER: False,
            c.CONSENT_PERSONALIZATION: [i != "no_consent" for i in ids],
            c.CONSENT_MARKETING: [i.startswith("a") for i in ids],
        }
    )
    return {c.PRODUCTS: products, c.ORDERS: orders, c.CUSTOMERS: customers}


@pytest.fixture(scope="module")
def style_model() -> tuple[HybridModel, dict[str, pd.DataFrame]]:
    tables = style_shop()
    items = item_features(tables[c.PRODUCTS])
    data = build_train_data(
        tables,
        items,
        InteractionWeights(),
        pd.Timestamp("2026-03-01", tz=TZ),
        trending_days=14,
        repeat_half_life_days=90,
    )
    lightfm = m.LightFmHybrid(
        LightFmSettings(components=8, learning_rate=0.05, threads=1, seed=3), epochs=30
    ).fit(data)
    components = ComponentSettings(
        ease_regularization=5, bm25_neighbours=10, item_neighbours=10, max_ease_items=100
    )
    model = fit_hybrid(data, tables[c.ORDERS], lightfm, components)
    model.blends = {
        "discovery": {"lightfm": 1.0, "ease": 1.0},
        "business_rules": {"lightfm": 1.0, "ease": 1.0},
        "all_purchases": {"lightfm": 1.0, "buy_again": 1.0},
    }
    return model, tables


def recommendations_for(
    model: HybridModel, tables: dict[str, pd.DataFrame], rules: BusinessRules | None = None
) -> Recommendations:
    customers = tables[c.CUSTOMERS].assign(rfm_segment="loyal")
    groups = group_popularity(tables[c.ORDERS], customers)
    catalog = tables[c.PRODUCTS][[c.ITEM_ID, c.NAME, c.CATEGORY, c.STOCK, c.LIST_PRICE]]
    return Recommendations(
        model, catalog, customers, groups, rules or BusinessRules(one_time_categories=("ring",))
    )


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


def test_service_answers_follow_style_rules_and_reasons(style_model: tuple[HybridModel, dict]) -> None:
    model, tables = style_model
    recs = recommendations_for(model, tables)
    answer = recs.recommend("new_a", 4)
    assert answer.personalized
    assert [item.item_id[0] for item in answer.items] == ["V"] * 4, "the four vintage rings not yet bought"
    assert "V0" not in [item.item_id for item in answer.items], (
        "a ring is a one-time buy: V0 is not offered again"
    )
    assert any(item.reason == "goes with V0 you bought" for item in answer.items)
    again = recs.recommend("new_a", 5, purchased="include")
    assert "V0" in [item.item_id for item in again.items]
    only_boho = recs.recommend("new_a", 3, Context(include_categories=["ring"], cart=["V1"]))
    assert "V1" not in [item.item_id for item in only_boho.items], "items in the cart are not recommended"


def test_cold_start_is_non_personalized_and_says_so(style_model: tuple[HybridModel, dict]) -> None:
    model, tables = style_model
    recs = recommendations_for(model, tables)
    unknown = recs.recommend("somebody-new", 3)
    assert not unknown.personalized
    assert unknown.source == "trending"
    refused = recs.recommend("no_consent", 3)
    assert not refused.personalized
    assert refused.source == "segment"
    assert len(refused.items) == 3


def test_pinned_boosted_and_out_of_stock_items(style_model: tuple[HybridModel, dict]) -> None:
    model, tables = style_model
    tables = {
        **tables,
        c.PRODUCTS: tables[c.PRODUCTS].assign(**{c.STOCK: [10, 0, 10, 10, 10, 10, 10, 10, 10, 10]}),
    }
    rules = BusinessRules(one_time_categories=("ring",), pinned_items=("B4",), boosted_items={"V3": 100.0})
    answer = recommendations_for(model, tables, rules).recommend("new_a", 3)
    items = [item.item_id for item in answer.items]
    assert items[0] == "B4"
    assert answer.items[0].reason == "featured by the shop"
    assert items[1] == "V3", "a x100 boost puts V3 first after the pinned item"
    assert "V1" not in items, "V1 is out of stock"


def test_similar_items_and_cart_complements(style_model: tuple[HybridModel, dict]) -> None:
    model, tables = style_model
    recs = recommendations_for(model, tables)
    similar = recs.similar("B2", 3)
    assert all(item.item_id.startswith("B") for item in similar)
    assert similar[0].reason == "similar to B2"
    complements = recs.complementary(["V1"], 3)
    assert all(item.item_id.startswith("V") for item in complements)
    viewed = recs.because_you_viewed(["B1", "B3"], 2)
    assert all(item.item_id.startswith("B") for item in viewed)
    assert viewed[0].reason == "because you viewed B3"


def test_a_new_item_is_placed_by_its_features(style_model: tuple[HybridModel, dict]) -> None:
    model, tables = style_model
    recs = recommendations_for(model, tables)
    scores = recs.new_item_scores(["vintage", "pearl"], "ring", "mid")
    a_fans = scores[[model.user_index[f"a{i}"] for i in range(30)]].mean()
    b_fans = scores[[model.user_index[f"b{i}"] for i in range(30)]].mean()
    assert a_fans > b_fans, "vintage fans like a new vintage ring more than boho fans do"


def test_audience_keeps_only_customers_with_marketing_consent(style_model: tuple[HybridModel, dict]) -> None:
    model, tables = style_model
    audience, excluded = recommendations_for(model, tables).audience(item_id="V2", size=10)
    assert len(audience) == 10
    assert audience[c.CUSTOMER_ID].str.startswith("a").all(), "only 'a' customers consented to marketing"
    assert excluded == 31, "the 30 b customers and new_a did not agree to marketing"
    assert audience["score"].is_monotonic_decreasing


@pytest.mark.parametrize("precomputed", [False, True])
def test_one_customer_is_answered_as_in_a_batch(
    style_model: tuple[HybridModel, dict], precomputed: bool
) -> None:
    """The service's one-customer path scores only the items some component ranks (and may
    read LightFM's precomputed top items); a batch scores every item. Same answers."""
    model, tables = style_model
    # three candidates per component: the one-customer path sees a subset of the catalogue,
    # and falls back to every item when the subset has too few allowed items
    narrow = dataclasses.replace(model, candidates=3)
    if precomputed:
        narrow.precompute_lightfm_top()
        assert narrow.lightfm_top is not None
        assert narrow.lightfm_top.shape == (len(model.user_ids), 3)
    recs = recommendations_for(narrow, tables)
    customers = [
        customer for customer in tables[c.CUSTOMERS][c.CUSTOMER_ID] if recs.can_personalize(customer)
    ]
    assert len(customers) >= 4
    for purchased in ("rules", "exclude", "include"):
        for k in (2, 4):
            for customer in customers:
                single = recs.recommend(customer, k, purchased=purchased)  # type: ignore[arg-type]
                batch = recs.recommend_many([customer, customer], k, purchased=purchased)[0]  # type: ignore[arg-type]
                assert [(item.item_id, item.score, item.reason) for item in single.items] == [
                    (item.item_id, item.score, item.reason) for item in batch.items
                ], (customer, purchased, k)


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


def test_discovery_removes_earlier_purchases_from_candidates_and_truth(
    style_model: tuple[HybridModel, dict],
) -> None:
    _model, tables = style_model
    data = build_train_data(
        tables,
        item_features(tables[c.PRODUCTS]),
        InteractionWeights(),
        pd.Timestamp("2026-03-01", tz=TZ),
        trending_days=14,
        repeat_half_life_days=90,
    )
    protocol = make_protocol("discovery", data, np.zeros(data.n_items, bool))
    user = data.user_ids.tolist().index("new_a")
    v0 = data.item_ids.tolist().index("V0")
    assert protocol.excluded[user, v0]

    truth = SimpleNamespace(user_index=np.array([user]), items=[np.array([v0, v0 + 1])])
    assert effective_truth(truth, protocol)[0].tolist() == [v0 + 1]  # type: ignore[arg-type]
    everything = make_protocol("all_purchases", data, np.zeros(data.n_items, bool))
    assert everything.excluded.nnz == 0
