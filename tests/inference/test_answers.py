"""What the storefront is answered: business rules, reasons, cold start, similar items,
complements, new items, audiences; one customer answered exactly as in a batch."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from inference.recommender.answers import Context
from inference.recommender.scoring import HybridModel
from storewise import columns as c
from storewise.settings import BusinessRules
from tests.style import build_style_model, recommendations_for


@pytest.fixture(scope="module")
def style_model() -> tuple[HybridModel, dict[str, pd.DataFrame]]:
    return build_style_model()


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


def mixed_categories(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The style shop with three categories: V0-V2 rings, V3-V4 earrings, the boho items bracelets."""
    categories = ["ring"] * 3 + ["earrings"] * 2 + ["bracelet"] * 5
    return {**tables, c.PRODUCTS: tables[c.PRODUCTS].assign(**{c.CATEGORY: categories})}


def test_max_per_category_spreads_the_answer_and_is_off_by_default(
    style_model: tuple[HybridModel, dict],
) -> None:
    model, tables = style_model
    recs = recommendations_for(model, mixed_categories(tables), BusinessRules())
    plain = recs.recommend("new_a", 4, purchased="include")
    assert [item.item_id[0] for item in plain.items] == ["V"] * 4, "off by default: four vintage items"
    capped = recs.recommend("new_a", 4, Context(max_per_category=1), purchased="include")
    categories = [recs.item_categories[item.item_id] for item in capped.items]
    assert len(categories) == len(set(categories)) == 3, "one ring, one pair of earrings, one bracelet"
    # the first of each category in the uncapped order is the one kept
    order = [item.item_id for item in recs.recommend("new_a", 10, purchased="include").items]
    firsts = list(dict.fromkeys(recs.item_categories[item] for item in order))
    kept = [next(item for item in order if recs.item_categories[item] == name) for name in firsts]
    assert [item.item_id for item in capped.items] == kept
    two = recs.recommend("new_a", 4, Context(max_per_category=2), purchased="include")
    assert (
        max(
            [recs.item_categories[item.item_id] for item in two.items].count(name)
            for name in ("ring", "earrings", "bracelet")
        )
        == 2
    )
    guest = recs.recommend(None, 5, Context(max_per_category=1))
    assert len({recs.item_categories[item.item_id] for item in guest.items}) == len(guest.items) == 3


def test_a_dismissed_item_is_never_recommended(style_model: tuple[HybridModel, dict]) -> None:
    model, tables = style_model
    recs = recommendations_for(model, tables)
    first = recs.recommend("new_a", 3).items[0].item_id
    again = recs.recommend("new_a", 3, Context(dismissed=[first]))
    assert first not in [item.item_id for item in again.items]
    assert len(again.items) == 3
    guest = recs.recommend(None, 3).items[0].item_id
    assert guest not in [item.item_id for item in recs.recommend(None, 3, Context(dismissed=[guest])).items]


@pytest.mark.parametrize("precomputed", [False, True])
def test_one_customer_is_answered_as_in_a_batch_with_a_cap_and_dismissals(
    style_model: tuple[HybridModel, dict], precomputed: bool
) -> None:
    model, tables = style_model
    narrow = dataclasses.replace(model, candidates=3)
    if precomputed:
        narrow.precompute_lightfm_top()
    recs = recommendations_for(narrow, mixed_categories(tables))
    customers = [
        customer for customer in tables[c.CUSTOMERS][c.CUSTOMER_ID] if recs.can_personalize(customer)
    ]
    for context in (Context(max_per_category=1), Context(max_per_category=2, dismissed=["V1", "B2"])):
        for k in (2, 3):
            for customer in customers:
                single = recs.recommend(customer, k, context, purchased="include")
                batch = recs.recommend_many([customer, customer], k, purchased="include", context=context)[0]
                assert [(item.item_id, item.score, item.reason) for item in single.items] == [
                    (item.item_id, item.score, item.reason) for item in batch.items
                ], (customer, context, k)
