"""Fitting the hybrid's components on training data (the model itself, and how it scores,
lives in `inference/recommender/scoring.py`, which the service loads)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from inference.recommender.scoring import HybridModel
from storewise import columns as c
from storewise.settings import ComponentSettings
from training.recommender.data import TrainData
from training.recommender.models import Ease, ItemKnnBm25, LightFmHybrid, Recommender, keep_top_neighbours

log = logging.getLogger(__name__)


class BlendView(Recommender):
    """The hybrid's blend for one protocol, evaluated like any other recommender; saved and
    loaded as the hybrid itself (`HybridModel.save`)."""

    def __init__(self, model: HybridModel, protocol: str) -> None:
        self.model, self.protocol = model, protocol
        self.name = "hybrid"

    def save(self, directory: Path) -> None:
        self.model.save(directory / "hybrid")
        (directory / "protocol.txt").write_text(self.protocol, encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> BlendView:
        return cls(
            HybridModel.load(directory / "hybrid"), (directory / "protocol.txt").read_text(encoding="utf-8")
        )

    def fit(self, data: TrainData) -> BlendView:
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.model.blend_scores(users, self.model.blends[self.protocol])

    def params(self) -> dict[str, Any]:
        return {
            f"blend.{self.protocol}.{name}": weight
            for name, weight in self.model.blends[self.protocol].items()
            if weight
        }


def recency_history(orders: pd.DataFrame, data: TrainData, half_life_days: float) -> sp.csr_matrix:
    """Purchases before the cutoff, each weighted 0.5 ** (age / half-life)."""
    known = orders[(orders[c.ORDERED_AT] < data.cutoff) & ~orders[c.RETURNED]]
    user_of = pd.Series(np.arange(data.n_users), index=data.user_ids)
    item_of = pd.Series(np.arange(data.n_items), index=data.item_ids)
    known = known[known[c.CUSTOMER_ID].isin(user_of.index) & known[c.ITEM_ID].isin(item_of.index)]
    age = (data.cutoff - known[c.ORDERED_AT]).dt.total_seconds().to_numpy() / 86_400
    return sp.csr_matrix(
        (
            (0.5 ** (age / half_life_days)).astype(np.float32),
            (user_of.loc[known[c.CUSTOMER_ID]].to_numpy(), item_of.loc[known[c.ITEM_ID]].to_numpy()),
        ),
        shape=(data.n_users, data.n_items),
    )


def decayed_popularity(orders: pd.DataFrame, data: TrainData, half_life_days: float) -> np.ndarray:
    """Distinct buyers per item, each counted 0.5 ** (age of their latest purchase / half-life)."""
    sales = orders[(orders[c.ORDERED_AT] < data.cutoff) & ~orders[c.RETURNED]]
    item_of = pd.Series(np.arange(data.n_items), index=data.item_ids)
    sales = sales[sales[c.ITEM_ID].isin(item_of.index)]
    buyer = sales[c.CUSTOMER_ID].fillna("guest:" + sales[c.ORDER_ID])
    age = (data.cutoff - sales[c.ORDERED_AT]).dt.total_seconds().to_numpy() / 86_400
    frame = pd.DataFrame(
        {
            "item": item_of.loc[sales[c.ITEM_ID]].to_numpy(),
            "buyer": buyer.to_numpy(),
            "w": 0.5 ** (age / half_life_days),
        }
    )
    per_item = frame.groupby(["item", "buyer"])["w"].max().groupby(level="item").sum()
    vector = np.zeros(data.n_items, np.float32)
    vector[per_item.index.to_numpy()] = per_item.to_numpy()
    return vector


def fit_hybrid(
    data: TrainData,
    orders: pd.DataFrame,
    lightfm: LightFmHybrid,
    settings: ComponentSettings,
) -> HybridModel:
    """Fit every component on `data` (LightFM must already be fitted on it)."""
    similarity: dict[str, sp.csr_matrix] = {}
    if Ease.fits(data.n_items, settings):
        similarity["ease"] = Ease(settings, "purchases", binary=True).fit(data).similarity
        similarity["ease_weights"] = Ease(settings, "weights", binary=False).fit(data).similarity
    else:
        log.warning(
            "EASE left out of the hybrid: %s items is above components.max_ease_items (%s)",
            f"{data.n_items:,}",
            f"{settings.max_ease_items:,}",
        )
    bm25 = ItemKnnBm25(settings, source="purchases", binary=False).fit(data).similarity
    similarity["bm25"] = (
        bm25 if bm25.nnz else keep_top_neighbours(sp.csr_matrix(bm25.shape, dtype=np.float32), 1)
    )
    binary = data.purchases.copy().astype(np.float32)
    binary.data = np.ones_like(binary.data)
    histories = {
        "binary": binary,
        "counts": data.purchases.astype(np.float32),
        "recent": recency_history(orders, data, settings.recent_half_life_days),
        "weights": data.weights.astype(np.float32),
        "repeat": data.repeat_score.astype(np.float32),
    }
    vectors = {
        "trending": decayed_popularity(orders, data, settings.trending_half_life_days),
        "recent_buyers": data.trending.astype(np.float32),
        "popularity": data.popularity.astype(np.float32),
    }
    feature_bias = (
        lightfm.model.item_biases[data.n_items :] if lightfm.use_features else np.zeros(0, np.float32)
    )
    feature_embedding = (
        lightfm.model.item_embeddings[data.n_items :]
        if lightfm.use_features
        else np.zeros((0, lightfm.components), np.float32)
    )
    return HybridModel(
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        user_embedding=lightfm.user_embedding.astype(np.float32),
        item_embedding=lightfm.item_embedding.astype(np.float32),
        item_bias=lightfm.item_bias.astype(np.float32),
        item_feature_embedding=np.asarray(feature_embedding, np.float32),
        item_feature_bias=np.asarray(feature_bias, np.float32),
        item_feature_names=data.item_feature_names if lightfm.use_features else [],
        similarity=similarity,
        histories=histories,
        vectors=vectors,
    )
