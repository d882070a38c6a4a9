"""Fitting the hybrid's components on training data (the model itself, and how it scores,
lives in `inference/recommender/scoring.py`, which the service loads)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from inference.recommender.rerank import customer_context
from inference.recommender.scoring import HybridModel
from storewise import columns as c
from storewise.settings import ComponentSettings, RecommenderSettings
from training.recommender.data import OrderCodes, TrainData
from training.recommender.models import (
    Ease,
    ItemKnnBm25,
    LightFmHybrid,
    Recommender,
    binarize,
    keep_top_neighbours,
)
from training.recommender.relations import cached_name_similarity, latest_baskets, next_basket_similarity
from training.recommender.repurchase import repurchase_scores
from training.recommender.tifu import tifu_scores, user_vectors

log = logging.getLogger(__name__)


class BlendView(Recommender):
    """The hybrid's blend for one protocol, evaluated like any other recommender; saved and
    loaded as the hybrid itself (`HybridModel.save`). With the protocol's `excluded` items,
    each component ranks only the items the protocol allows, as the service does."""

    def __init__(self, model: HybridModel, protocol: str, excluded: sp.csr_matrix | None = None) -> None:
        self.model, self.protocol, self.excluded = model, protocol, excluded
        self.name = "hybrid"

    def save(self, directory: Path) -> None:
        self.model.save(directory / "hybrid")
        (directory / "protocol.txt").write_text(self.protocol, encoding="utf-8")
        if self.excluded is not None:
            sp.save_npz(directory / "excluded.npz", sp.csr_matrix(self.excluded, dtype=np.float32))

    @classmethod
    def load(cls, directory: Path) -> BlendView:
        excluded = directory / "excluded.npz"
        return cls(
            HybridModel.load(directory / "hybrid"),
            (directory / "protocol.txt").read_text(encoding="utf-8"),
            sp.load_npz(excluded).tocsr().astype(bool) if excluded.exists() else None,
        )

    def fit(self, data: TrainData) -> BlendView:
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.model.protocol_scores(users, self.protocol, blocked_rows(self.excluded, users))

    def params(self) -> dict[str, Any]:
        if self.protocol in self.model.rerankers:
            return {f"rerank.{self.protocol}": True}
        return {
            f"blend.{self.protocol}.{name}": weight
            for name, weight in self.model.blends[self.protocol].items()
            if weight
        }


def blocked_rows(excluded: sp.csr_matrix | None, users: np.ndarray) -> list[np.ndarray] | None:
    """Each user's excluded item columns (None when nothing is excluded)."""
    if excluded is None or not excluded.nnz:
        return None
    return [excluded.indices[excluded.indptr[user] : excluded.indptr[user + 1]] for user in users]


def recency_history(
    orders: pd.DataFrame, codes: OrderCodes, data: TrainData, half_life_days: float
) -> sp.csr_matrix:
    """Purchases before the cutoff, each weighted 0.5 ** (age / half-life) (`codes`: the
    order lines' ids as codes, which find their rows and columns)."""
    rows, columns = codes.lines_in(data.user_ids, data.item_ids)
    bought = (orders[c.ORDERED_AT] < data.cutoff).to_numpy() & ~orders[c.RETURNED].to_numpy()
    known = bought & (rows >= 0) & (columns >= 0)
    age = (data.cutoff - orders[c.ORDERED_AT][known]).dt.total_seconds().to_numpy() / 86_400
    return sp.csr_matrix(
        ((0.5 ** (age / half_life_days)).astype(np.float32), (rows[known], columns[known])),
        shape=(data.n_users, data.n_items),
    )


def season_similarity(recent: sp.csr_matrix, parts: ComponentSettings) -> sp.csr_matrix:
    """BM25 item-kNN on the recency-weighted purchases (the "recent" history): items bought
    together lately. A year of baskets dilutes a season's pairs (the Christmas run-up's
    decorations) in the all-time BM25 component; here a purchase counts 0.5 ** (age /
    recent_half_life_days)."""
    empty = sp.csr_matrix((recent.shape[1], recent.shape[1]), dtype=np.float32)
    similarity = ItemKnnBm25(parts).item_similarity(recent) if recent.nnz else empty
    return similarity if similarity.nnz else empty


def decayed_popularity(
    orders: pd.DataFrame, codes: OrderCodes, data: TrainData, half_life_days: float
) -> np.ndarray:
    """Distinct buyers per item, each counted 0.5 ** (age of their latest purchase / half-life)
    (a guest order one buyer, as `OrderCodes` numbers them)."""
    columns = codes.positions(codes.items, data.item_ids, codes.item)
    sale = (orders[c.ORDERED_AT] < data.cutoff).to_numpy() & ~orders[c.RETURNED].to_numpy() & (columns >= 0)
    age = (data.cutoff - orders[c.ORDERED_AT][sale]).dt.total_seconds().to_numpy() / 86_400
    frame = pd.DataFrame(
        {"item": columns[sale], "buyer": codes.buyer[sale], "w": 0.5 ** (age / half_life_days)}
    )
    per_item = frame.groupby(["item", "buyer"])["w"].max().groupby(level="item").sum()
    vector = np.zeros(data.n_items, np.float32)
    vector[per_item.index.to_numpy()] = per_item.to_numpy()
    return vector


def fit_hybrid(
    data: TrainData,
    orders: pd.DataFrame,
    lightfm: LightFmHybrid | None,
    settings: RecommenderSettings,
    *,
    components: Collection[str] | None = None,
    horizon_days: float | None = None,
    users: np.ndarray | None = None,
    codes: OrderCodes | None = None,
    fitted: Mapping[str, sp.csr_matrix] | None = None,
) -> HybridModel:
    """Fit the hybrid's `components` (default: every one the blend may use) on `data`.
    LightFM must already be fitted on it (None leaves LightFM out: `with_lightfm` adds it
    later, the same model). `users` limits the per-customer precomputations (TIFU-KNN) to
    the customers that will be scored; `horizon_days` is how far ahead repurchase timing
    predicts (default: the test weeks). `codes` are `orders`' ids as codes (a run makes them
    once, `PreparedTables.codes`; made here if not given). `fitted` holds arrays already
    computed on `data` with these settings and the default horizon ("ease", "bm25", "due"),
    taken instead of computed again: the test weeks' peers fit them too (`comparison.PeerFits`)."""
    codes = OrderCodes.of(orders) if codes is None else codes
    fitted = {} if fitted is None else fitted
    wanted = set(settings.blend.components if components is None else components)
    horizon = settings.evaluation.test_days if horizon_days is None else horizon_days
    parts = settings.components
    similarity = item_item_matrices(data, parts, wanted, fitted)
    if "names" in wanted:
        similarity["names"] = cached_name_similarity(
            data.item_features, data.item_feature_names, parts.item_neighbours
        )
    if "next" in wanted:
        similarity["next"] = next_basket_similarity(data, parts.item_neighbours)
    histories = {
        "binary": binarize(data.purchases),
        "counts": data.purchases.astype(np.float32),
        "repeat": data.repeat_score.astype(np.float32),
        # what "exclude purchased" leaves out: items returned in full too (not new to them)
        "ever_bought": data.ever_bought.astype(np.float32),
    }
    if wanted & {"ease_recent", "bm25_recent", "names", "season"}:
        histories["recent"] = recency_history(orders, codes, data, parts.recent_half_life_days)
    if "season" in wanted:
        similarity["season"] = season_similarity(histories["recent"], parts)
    if "ease_weights" in wanted:
        histories["weights"] = data.weights.astype(np.float32)
    if "next" in wanted:
        histories["latest"] = latest_baskets(data, parts.latest_baskets)
    if "due" in wanted:
        histories["due"] = (
            fitted["due"] if "due" in fitted else repurchase_scores(data, horizon, settings.repurchase)
        )
    if wanted & {"tifu", "tifu_explore"}:
        histories.update(tifu_histories(data, settings, users))
    vectors = {
        "trending": decayed_popularity(orders, codes, data, parts.trending_half_life_days),
        "recent_buyers": data.trending.astype(np.float32),
        "popularity": data.popularity.astype(np.float32),
    }
    model = HybridModel(
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        **lightfm_arrays(lightfm, data),
        similarity=similarity,
        histories=histories,
        vectors=vectors,
    )
    model.candidates, model.rank_offset = settings.blend.candidates, settings.blend.rank_offset
    model.customer_context = customer_context(data.basket_user, data.basket_age, data.ever_bought)
    return model


def item_item_matrices(
    data: TrainData, parts: ComponentSettings, wanted: set[str], fitted: Mapping[str, sp.csr_matrix]
) -> dict[str, sp.csr_matrix]:
    """EASE (when the catalogue allows its dense inverse and a component wants it) and BM25
    (always: the service's reasons and complements read it); either taken from `fitted`
    when it holds it (`fit_hybrid`)."""
    similarity: dict[str, sp.csr_matrix] = {}
    if wanted & {"ease", "ease_recent", "ease_weights"} and not Ease.fits(data.n_items, parts):
        log.warning(
            "EASE left out of the hybrid: %s items is above components.max_ease_items (%s)",
            f"{data.n_items:,}",
            f"{parts.max_ease_items:,}",
        )
    elif wanted & {"ease", "ease_recent", "ease_weights"}:
        if wanted & {"ease", "ease_recent"}:
            similarity["ease"] = (
                fitted["ease"]
                if "ease" in fitted
                else Ease(parts, "purchases", binary=True).fit(data).similarity
            )
        if "ease_weights" in wanted:
            similarity["ease_weights"] = Ease(parts, "weights", binary=False).fit(data).similarity
    bm25 = (
        fitted["bm25"]
        if "bm25" in fitted
        else ItemKnnBm25(parts, source="purchases", binary=False).fit(data).similarity
    )
    similarity["bm25"] = (
        bm25 if bm25.nnz else keep_top_neighbours(sp.csr_matrix(bm25.shape, dtype=np.float32), 1)
    )
    return similarity


def tifu_histories(
    data: TrainData, settings: RecommenderSettings, users: np.ndarray | None
) -> dict[str, sp.csr_matrix]:
    """TIFU-KNN's best items per customer (all of them, or `users` only), full and explore."""
    scored = np.arange(data.n_users) if users is None else np.unique(users)
    vectors = user_vectors(data.baskets, data.basket_user, data.n_users, settings.tifu)
    full, explore = tifu_scores(vectors, scored, settings.tifu, keep=settings.blend.candidates)
    spread = sp.csr_matrix(
        (np.ones(len(scored), np.float32), (scored, np.arange(len(scored)))),
        shape=(data.n_users, len(scored)),
    )
    return {"tifu": sp.csr_matrix(spread @ full), "tifu_explore": sp.csr_matrix(spread @ explore)}


def with_lightfm(model: HybridModel, lightfm: LightFmHybrid, data: TrainData) -> HybridModel:
    """`model` (fitted on `data` without LightFM) with `lightfm`'s representations: the
    other components are built while LightFM may still be fitting elsewhere."""
    for name, value in lightfm_arrays(lightfm, data).items():
        setattr(model, name, value)
    return model


def lightfm_arrays(lightfm: LightFmHybrid | None, data: TrainData) -> dict[str, Any]:
    """LightFM's representations for the hybrid (empty when LightFM is left out)."""
    if lightfm is None:
        return {
            "user_embedding": np.zeros((data.n_users, 0), np.float32),
            "item_embedding": np.zeros((data.n_items, 0), np.float32),
            "item_bias": np.zeros(data.n_items, np.float32),
            "item_feature_embedding": np.zeros((0, 0), np.float32),
            "item_feature_bias": np.zeros(0, np.float32),
            "item_feature_names": [],
        }
    features = lightfm.use_features
    return {
        "user_embedding": lightfm.user_embedding.astype(np.float32),
        "item_embedding": lightfm.item_embedding.astype(np.float32),
        "item_bias": lightfm.item_bias.astype(np.float32),
        "item_feature_embedding": np.asarray(
            lightfm.model.item_embeddings[data.n_items :]
            if features
            else np.zeros((0, lightfm.components), np.float32),
            np.float32,
        ),
        "item_feature_bias": np.asarray(
            lightfm.model.item_biases[data.n_items :] if features else np.zeros(0, np.float32), np.float32
        ),
        "item_feature_names": data.item_feature_names if features else [],
    }
