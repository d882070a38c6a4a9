"""A tiny shop whose right answers are known: two styles of five rings, customers who buy
one style only. Shared by the recommender's tests (training and inference)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.item_features import item_features
from inference.recommender.answers import Recommendations
from inference.recommender.scoring import HybridModel
from storewise import columns as c
from storewise.settings import (
    BusinessRules,
    ComponentSettings,
    InteractionWeights,
    LightFmSettings,
    RecommenderSettings,
)
from training.recommender import models as m
from training.recommender.bundle import group_popularity
from training.recommender.data import TrainData, build_train_data
from training.recommender.hybrid import fit_hybrid

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


def build_style_model() -> tuple[HybridModel, dict[str, pd.DataFrame]]:
    """The hybrid fitted on the style shop, with hand-set blends: its right answers are known."""
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
    model = fit_hybrid(
        data,
        tables[c.ORDERS],
        lightfm,
        RecommenderSettings(components=components),
        components={"lightfm", "ease", "bm25", "buy_again"},
    )
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


def style_data(tables: dict[str, pd.DataFrame]) -> TrainData:
    """The style shop's (or a variant's) training data at 2026-03-01, trending over its last
    14 days."""
    return build_train_data(
        tables,
        item_features(tables[c.PRODUCTS]),
        InteractionWeights(),
        pd.Timestamp("2026-03-01", tz=TZ),
        trending_days=14,
        repeat_half_life_days=90,
    )
