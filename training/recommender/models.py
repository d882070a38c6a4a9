"""One small interface, and every model behind it: the LightFM hybrid and its peers.

`fit(data)` learns from a TrainData; `score(users)` returns a dense users x items score
matrix (higher is better). Excluding items and cutting the top k happen outside, the same
way for every model, so comparisons are fair. The peers come from libraries where one
exists (implicit's BM25 item-kNN and ALS); EASE, popularity, co-occurrence and buy-again
are a few lines of linear algebra each.

Constructors take the typed settings (`storewise/settings.py`, loaded from
`config/recommender.yaml`) and say only which variant they are (what history, binary or
counts): no default lives here, so a model never runs on a value the config does not show.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from storewise.settings import (
    AlsSettings,
    ComponentSettings,
    LightFmSettings,
    RepurchaseSettings,
    TifuSettings,
)
from training.recommender.data import TrainData
from training.recommender.repurchase import repurchase_scores
from training.recommender.sparse import keep_best_per_row
from training.recommender.tifu import tifu_dense, user_vectors


class Recommender(ABC):
    """`fit` learns from a TrainData; `score(users)` is a users x items array, higher is
    better; `save` and `load` keep what `score` needs (the arrays named in `state`) and the
    model's settings, so a saved model scores exactly as the fitted one."""

    name: str = "model"
    state: tuple[str, ...] = ()

    @abstractmethod
    def fit(self, data: TrainData) -> Recommender: ...

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray: ...

    def params(self) -> dict[str, Any]:
        return {}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        settings = {
            key: value
            for key, value in vars(self).items()
            if key not in self.state and isinstance(value, str | int | float | bool)
        }
        (directory / "recommender.json").write_text(
            json.dumps({"class": type(self).__name__, "settings": settings}), encoding="utf-8"
        )
        for key in self.state:
            value = getattr(self, key)
            if sp.issparse(value):
                sp.save_npz(directory / f"{key}.npz", sp.csr_matrix(value))
            else:
                np.save(directory / f"{key}.npy", np.asarray(value), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> Self:
        meta = json.loads((directory / "recommender.json").read_text(encoding="utf-8"))
        if meta["class"] != cls.__name__:
            raise ValueError(f"{directory} holds a {meta['class']}, not a {cls.__name__}")
        model = cls.__new__(cls)
        vars(model).update(meta["settings"])
        for key in cls.state:
            sparse = directory / f"{key}.npz"
            value = sp.load_npz(sparse).tocsr() if sparse.exists() else np.load(directory / f"{key}.npy")
            setattr(model, key, value)
        return model


def keep_top_neighbours(similarity: np.ndarray | sp.spmatrix, neighbours: int) -> sp.csr_matrix:
    """Each row keeps its `neighbours` largest entries (the diagonal removed). A sparse
    matrix (nonnegative: co-occurrence, BM25) is cut row by row over its stored entries;
    densifying 20,000 items would be a 1.6 GB array and most of a training run."""
    if isinstance(similarity, sp.spmatrix | sp.sparray):
        return _keep_top_sparse(sp.csr_matrix(similarity, dtype=np.float32), neighbours)
    dense = np.asarray(similarity, dtype=np.float32)
    np.fill_diagonal(dense, 0)
    n_rows, n = dense.shape
    top = min(neighbours, n)
    columns = (
        np.argpartition(-dense, top - 1, axis=1)[:, :top] if top < n else np.tile(np.arange(n), (n_rows, 1))
    )
    values = np.take_along_axis(dense, columns, axis=1)
    result = sp.csr_matrix(
        (values.ravel(), (np.repeat(np.arange(n_rows), top), columns.ravel())),
        shape=dense.shape,
        dtype=np.float32,
    )
    result.eliminate_zeros()
    result.sort_indices()
    return result


def _keep_top_sparse(matrix: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    matrix = matrix.copy()
    matrix.setdiag(0)
    return keep_best_per_row(matrix, neighbours)


def binarize(matrix: sp.csr_matrix) -> sp.csr_matrix:
    result = matrix.copy().astype(np.float32)
    result.data = np.ones_like(result.data)
    return result


class Popularity(Recommender):
    """Items by distinct buyers; `trending` counts only the last weeks before the cutoff."""

    state = ("vector",)

    def __init__(self, trending: bool = False) -> None:
        self.trending = trending
        self.name = "trending" if trending else "popularity"

    def fit(self, data: TrainData) -> Popularity:
        base = data.trending if self.trending else data.popularity
        # trending ties (items nobody bought lately) fall back on all-time popularity
        self.vector = (base + 1e-6 * data.popularity / max(data.popularity.max(), 1)).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.vector, (len(users), 1))


class BuyAgain(Recommender):
    """The customer's own purchases, most and most recently bought first, then popularity."""

    name = "buy_again"
    state = ("repeat", "fallback")

    def fit(self, data: TrainData) -> BuyAgain:
        self.repeat = data.repeat_score
        self.fallback = (data.popularity / max(data.popularity.max(), 1) * 1e-3).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.repeat[users].toarray().astype(np.float32) + self.fallback


class Repurchase(Recommender):
    """Buy again with repurchase timing: the customer's own items by the learned chance of
    buying each again in the next weeks (`repurchase.py`), then popularity."""

    name = "repurchase"
    state = ("due", "fallback")

    def __init__(self, settings: RepurchaseSettings, horizon_days: float) -> None:
        self.settings, self.horizon_days = settings, horizon_days

    def fit(self, data: TrainData) -> Repurchase:
        return self.fit_from(repurchase_scores(data, self.horizon_days, self.settings), data)

    def fit_from(self, due: sp.csr_matrix, data: TrainData) -> Repurchase:
        """Take scores already computed on `data` with these settings (the hybrid's `due`)."""
        self.due = due
        self.fallback = (data.popularity / max(data.popularity.max(), 1) * 1e-10).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.due[users].toarray().astype(np.float32) + self.fallback

    def params(self) -> dict[str, Any]:
        return {"horizon_days": self.horizon_days, **self.settings.model_dump()}


class TifuKnn(Recommender):
    """TIFU-KNN (`tifu.py`): time-decayed item frequencies blended with the nearest
    customers' (the repeat part and the explore part in one score)."""

    name = "tifu_knn"
    state = ("vectors",)

    def __init__(self, settings: TifuSettings) -> None:
        self.neighbours, self.within_decay, self.group_decay = (
            settings.neighbours,
            settings.within_decay,
            settings.group_decay,
        )
        self.groups, self.alpha, self.neighbour_pool = (
            settings.groups,
            settings.alpha,
            settings.neighbour_pool,
        )

    def settings(self) -> TifuSettings:
        return TifuSettings(
            neighbours=self.neighbours,
            within_decay=self.within_decay,
            group_decay=self.group_decay,
            groups=self.groups,
            alpha=self.alpha,
            neighbour_pool=self.neighbour_pool,
        )

    def fit(self, data: TrainData) -> TifuKnn:
        self.vectors = user_vectors(data.baskets, data.basket_user, data.n_users, self.settings())
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        if not len(users):
            return np.zeros((0, self.vectors.shape[1]), np.float32)
        return np.vstack(
            [scores for scores, _ in tifu_dense(self.vectors, np.asarray(users), self.settings())]
        )

    def params(self) -> dict[str, Any]:
        return self.settings().model_dump()


class ItemItem(Recommender):
    """Score = the user's history times an item-item matrix. Subclasses make the matrix."""

    state = ("user_items", "similarity")

    def __init__(self, source: str = "weights", binary: bool = False) -> None:
        self.source = source
        self.binary = binary

    def history(self, data: TrainData) -> sp.csr_matrix:
        matrix = data.weights if self.source == "weights" else data.purchases
        return binarize(matrix) if self.binary else matrix.astype(np.float32)

    def fit(self, data: TrainData) -> ItemItem:
        self.user_items = self.history(data)
        self.similarity = self.item_similarity(self.user_items)
        return self

    @abstractmethod
    def item_similarity(self, user_items: sp.csr_matrix) -> sp.csr_matrix: ...

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.user_items[users] @ self.similarity).todense(), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {"source": self.source, "binary": self.binary}


class Cooccurrence(ItemItem):
    """Cosine-normalized co-occurrence of items in customers' histories."""

    name = "cooccurrence"

    def __init__(self, neighbours: int, source: str = "weights", binary: bool = True) -> None:
        super().__init__(source, binary)
        self.neighbours = neighbours

    def item_similarity(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        presence = binarize(user_items)
        counts = (presence.T @ presence).tocsr().astype(np.float32)
        norms = np.sqrt(counts.diagonal())
        norms[norms == 0] = 1
        cosine = sp.diags(1 / norms) @ counts @ sp.diags(1 / norms)
        return keep_top_neighbours(cosine, self.neighbours)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "neighbours": self.neighbours}


class Ease(ItemItem):
    """EASE (Steck 2019): B = I - P / diag(P), P = (XᵀX + λI)⁻¹, diagonal of B zero."""

    name = "ease"

    def __init__(self, settings: ComponentSettings, source: str = "purchases", binary: bool = True) -> None:
        super().__init__(source, binary)
        self.regularization = settings.ease_regularization
        self.neighbours = settings.item_neighbours
        self.max_items = settings.max_ease_items

    @staticmethod
    def fits(n_items: int, settings: ComponentSettings) -> bool:
        """Whether EASE's dense inverse is allowed for this catalogue (`max_ease_items`)."""
        return n_items <= settings.max_ease_items

    def item_similarity(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        n_items = user_items.shape[1]
        if n_items > self.max_items:
            raise ValueError(
                f"EASE needs a dense {n_items:,} x {n_items:,} inverse, above components.max_ease_items "
                f"({self.max_items:,}) in config/recommender.yaml"
            )
        return keep_top_neighbours(ease_weights(user_items, self.regularization), self.neighbours)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "regularization": self.regularization, "neighbours": self.neighbours}


def ease_weights(user_items: sp.csr_matrix, regularization: float) -> np.ndarray:
    """EASE's item-item weights. The Gram matrix plus λI is symmetric positive definite, so
    its inverse comes from a Cholesky factorization (LAPACK potrf/potri) in float32: about
    three times faster than a general float64 inverse, and the rankings are the same."""
    from scipy.linalg import lapack

    n_items = user_items.shape[1]
    gram = (user_items.T @ user_items).toarray().astype(np.float32)
    gram[np.diag_indices(n_items)] += regularization
    factor, info = lapack.spotrf(gram, lower=0, overwrite_a=True)
    if info == 0:
        inverse, info = lapack.spotri(factor, lower=0, overwrite_c=True)
    if info != 0:
        raise ValueError(f"EASE: the regularized Gram matrix is not positive definite (LAPACK info {info})")
    _mirror_upper(inverse)  # potri fills the upper triangle only
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0)
    return weights


def _mirror_upper(matrix: np.ndarray, block: int = 512) -> None:
    """Copy the upper triangle onto the lower, in place, a block of rows at a time (numpy's
    triu/tril build a full boolean mask: a second for 8,000 items)."""
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        matrix[start:stop, :start] = matrix[:start, start:stop].T
        square = matrix[start:stop, start:stop]
        square[:] = np.triu(square) + np.triu(square, 1).T


class ItemKnnBm25(ItemItem):
    """implicit's BM25-weighted item-kNN."""

    name = "item_knn_bm25"

    def __init__(self, settings: ComponentSettings, source: str = "purchases", binary: bool = False) -> None:
        super().__init__(source, binary)
        self.neighbours, self.k1, self.b = settings.bm25_neighbours, settings.bm25_k1, settings.bm25_b
        self.threads = settings.threads

    def item_similarity(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        from implicit.nearest_neighbours import BM25Recommender, ItemItemRecommender, bm25_weight

        model = BM25Recommender(K=self.neighbours, K1=self.k1, B=self.b, num_threads=self.threads)
        # BM25Recommender.fit hands its weighting to the neighbour search as COO, which then
        # warns "expects CSR input" on every fit: the same weighting, as CSR
        weighted = sp.csr_matrix(bm25_weight(user_items.T, self.k1, self.b).T)
        ItemItemRecommender.fit(model, weighted, show_progress=False)
        return sp.csr_matrix(model.similarity).astype(np.float32)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "neighbours": self.neighbours, "k1": self.k1, "b": self.b}


class Als(Recommender):
    """implicit's alternating least squares on confidence-weighted implicit feedback."""

    name = "als"
    state = ("user_factors", "item_factors")

    def __init__(
        self, settings: AlsSettings, threads: int, source: str = "purchases", binary: bool = False
    ) -> None:
        self.factors, self.regularization, self.alpha = (
            settings.factors,
            settings.regularization,
            settings.alpha,
        )
        self.iterations, self.seed, self.threads = settings.iterations, settings.seed, threads
        self.source, self.binary = source, binary

    def fit(self, data: TrainData) -> Als:
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits  # a requirement of implicit itself

        matrix = data.weights if self.source == "weights" else data.purchases
        matrix = binarize(matrix) if self.binary else matrix.astype(np.float32)
        # implicit runs its own threads: OpenBLAS threads inside them slow it down (implicit
        # checks, and warns, when the model is made)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.threads,
            )
            model.fit(sp.csr_matrix(matrix), show_progress=False)
        self.user_factors = np.asarray(model.user_factors)
        self.item_factors = np.asarray(model.item_factors)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.user_factors[users] @ self.item_factors.T).astype(np.float32)

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "source": self.source,
            "binary": self.binary,
        }


# LightFM's learned arrays per side: the rows (identities, then feature columns) and the
# per-row AdaGrad state, all carried over when a model continues another (`fit(start_from=)`)
LIGHTFM_STATE = {
    side: tuple(
        f"{side}_{name}"
        for name in (
            "embeddings",
            "embedding_gradients",
            "embedding_momentum",
            "biases",
            "bias_gradients",
            "bias_momentum",
        )
    )
    for side in ("user", "item")
}


class LightFmHybrid(Recommender):
    """LightFM with user features (region, segment, price band, favourite category,
    membership) and item features (category, price band, tags) beside the identities,
    so a new item is placed by its features and a customer's taste generalizes across
    items that share them."""

    name = "lightfm"
    state = ("user_embedding", "item_embedding", "item_bias")

    def __init__(self, settings: LightFmSettings, epochs: int) -> None:
        self.settings, self.epochs = settings, epochs
        self.loss, self.components, self.learning_rate = (
            settings.loss,
            settings.components,
            settings.learning_rate,
        )
        self.use_features, self.feature_weight = settings.use_features, settings.feature_weight
        self.seed, self.threads = settings.seed, settings.threads
        self.epochs_trained = 0
        self.epochs_before = 0  # epochs of the model this one continued (and of its own start)
        # every customer's best items, when computed by the run's jobs (`with_top_items`,
        # `take_top_items`)
        self.top_items: np.ndarray | None = None

    def feature_matrices(self, data: TrainData) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        users = sp.identity(data.n_users, format="csr", dtype=np.float32)
        items = sp.identity(data.n_items, format="csr", dtype=np.float32)
        if self.use_features:
            users = sp.hstack([users, self.feature_weight * data.user_features], format="csr")
            items = sp.hstack([items, self.feature_weight * data.item_features], format="csr")
        return users, items

    def row_keys(self, data: TrainData) -> dict[str, np.ndarray]:
        """What each row of LightFM's arrays stands for (a customer, an item or a feature
        column), so a model at a later cutoff can take over the rows it shares."""
        users = [f"customer:{user}" for user in data.user_ids]
        items = [f"item:{item}" for item in data.item_ids]
        if self.use_features:
            users += [f"feature:{name}" for name in data.user_feature_names]
            items += [f"feature:{name}" for name in data.item_feature_names]
        return {"user": np.asarray(users, dtype=object), "item": np.asarray(items, dtype=object)}

    def fit(
        self,
        data: TrainData,
        on_epoch: Callable[[int, LightFmHybrid], bool] | None = None,
        start_from: LightFmHybrid | None = None,
        fallbacks: tuple[LightFmHybrid, ...] = (),
        until: Callable[[int], bool] | None = None,
    ) -> LightFmHybrid:
        """Train up to `epochs`; `on_epoch(epoch, self)` may return True to stop early, and so
        may `until(epoch)`, which reads no representations (they are computed once, at the end).
        With `start_from` (a model of the same settings at an earlier cutoff), training
        continues from its rows instead of from random ones: retraining from scratch at
        every cutoff of a run was most of its time, and what the earlier model learned
        holds for the longer history too. A row `start_from` lacks is taken from the first of
        `fallbacks` that has it (the test weeks' model knows no item launched after their
        start; the latest fold's, on the whole catalogue, does)."""
        from lightfm import LightFM

        self.model = LightFM(
            no_components=self.components,
            loss=self.loss,
            learning_rate=self.learning_rate,
            item_alpha=self.settings.item_alpha,
            user_alpha=self.settings.user_alpha,
            max_sampled=self.settings.max_sampled,
            random_state=np.random.RandomState(self.seed),
        )
        self.user_matrix, self.item_matrix = self.feature_matrices(data)
        self.rows = self.row_keys(data)
        if start_from is not None:
            self._continue(start_from, fallbacks)
        interactions = data.weights.tocoo()
        sample_weight = interactions.copy()
        sample_weight.data = (interactions.data / interactions.data.mean()).astype(np.float32)
        binary = interactions.copy()
        binary.data = np.ones_like(binary.data)
        for epoch in range(1, self.epochs + 1):
            self.model.fit_partial(
                binary,
                user_features=self.user_matrix,
                item_features=self.item_matrix,
                sample_weight=sample_weight,
                epochs=1,
                num_threads=self.threads,
            )
            self.epochs_trained = epoch
            if on_epoch is not None:
                self._cache_representations()
                if on_epoch(epoch, self):
                    break
            if until is not None and until(epoch):
                break
        if on_epoch is None:
            self._cache_representations()
        return self

    def _continue(self, previous: LightFmHybrid, fallbacks: tuple[LightFmHybrid, ...] = ()) -> None:
        """Start from `previous`'s rows: every customer, item and feature column both
        models have keeps its embedding, bias and AdaGrad state; a row `previous` lacks comes
        from the first of `fallbacks` that has it; the rest start as LightFM starts them
        (random embeddings, zero biases)."""
        model = self.model
        model._initialize(self.components, len(self.rows["item"]), len(self.rows["user"]))
        for side, names in LIGHTFM_STATE.items():
            filled = np.zeros(len(self.rows[side]), bool)
            for source in (previous, *fallbacks):
                positions = pd.Index(source.rows[side]).get_indexer(self.rows[side])
                take = (positions >= 0) & ~filled
                for name in names:
                    getattr(model, name)[take] = getattr(source.model, name)[positions[take]]
                filled |= take
        self.epochs_before = previous.epochs_before + previous.epochs_trained

    def representations(self) -> tuple[tuple[np.ndarray, ...], dict[str, np.ndarray]]:
        """A copy of what `score` reads and of LightFM's own arrays, to keep an epoch's
        model (`restore`)."""
        scored = tuple(
            np.array(a) for a in (self.user_bias, self.user_embedding, self.item_bias, self.item_embedding)
        )
        learned = {
            name: np.array(getattr(self.model, name)) for names in LIGHTFM_STATE.values() for name in names
        }
        return scored, learned

    def restore(self, snapshot: tuple[tuple[np.ndarray, ...], dict[str, np.ndarray]], epoch: int) -> None:
        """Back to the epoch `snapshot` was taken at: what is scored, and LightFM's arrays
        (a model continuing this one starts from that epoch)."""
        scored, learned = snapshot
        self.user_bias, self.user_embedding, self.item_bias, self.item_embedding = scored
        for name, array in learned.items():
            setattr(self.model, name, array)
        self.epochs_trained = epoch

    def _cache_representations(self) -> None:
        self.user_bias, self.user_embedding = self.model.get_user_representations(self.user_matrix)
        self.item_bias, self.item_embedding = self.model.get_item_representations(self.item_matrix)

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.user_embedding[users] @ self.item_embedding.T + self.item_bias).astype(np.float32)

    def params(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "components": self.components,
            "learning_rate": self.learning_rate,
            "item_alpha": self.settings.item_alpha,
            "user_alpha": self.settings.user_alpha,
            "max_sampled": self.settings.max_sampled,
            "epochs": self.epochs_before + self.epochs_trained,
            "use_features": self.use_features,
            "feature_weight": self.feature_weight,
            "seed": self.seed,
        }
