"""The hybrid recommender as it is loaded to answer: precomputed arrays and their scoring.

Training fits it (`training/recommender/hybrid.py`) and writes it into the bundle; the
service and the batch CLI load it from there and score with NumPy alone.

It holds precomputed arrays only (LightFM user and item representations, item-item
matrices, customers' histories, popularity vectors) and blends components by rank:
each component's top `candidates` items score 1 / (rank + offset), and the blend is a
weighted sum of those, with weights per protocol tuned on the validation weeks. Rank
blending makes components on different scales comparable and is cheap: a partial sort
per component, no per-item Python loop.

Where training adopted one (`rerankers`), a protocol is answered by a learned reranker
instead of its blend: gradient-boosted trees over the same candidates, reading each
component's rank score and the item's and customer's context (`rerank.py`).

Each component ranks only the items the answer may hold: with bought items excluded
(discovery), a customer who bought 150 items gets every component's best new items ranked
from the top, not what is left of a list that the old purchases filled. The components
that are the same for everyone (trending, popularity) keep one ranking for all customers.

Components (name: what scores item i for customer u):
- lightfm: LightFM's u·i + bias, with customer and item features;
- ease / ease_recent: EASE on bought/not-bought, times the customer's purchases (all,
  or weighted towards recent ones);
- ease_weights: EASE on interaction weights (views, carts, purchases), times the
  customer's interaction weights;
- bm25 / bm25_recent: BM25 item-kNN (implicit) on purchase counts, times counts (all,
  or recent);
- names: items whose names share rare words with the customer's recent purchases;
- season: BM25 item-kNN learned from recent co-purchases (every purchase weighted towards
  recent ones, as the customer's recent history is), times the recent history: what goes
  together this season (the Christmas run-up's decorations), which a year of baskets dilutes;
- next: what customers bought new in the basket after one like the customer's latest;
- buy_again: the customer's own purchases, decayed by age;
- due: the chance the customer buys the item again soon (repurchase timing);
- tifu / tifu_explore: TIFU-KNN (the customer's time-decayed item frequencies blended with
  their nearest neighbours'), and its neighbours' part on items the customer never bought;
- trending, recent_buyers, popularity: what sells lately (buyers decayed by a short
  half-life, or counted over the last weeks) and overall (the same for everyone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from inference.recommender.rerank import (
    Reranker,
    TreeEnsemble,
    candidate_features,
    context_features,
    union_candidates,
)

# component -> (item-item matrix, history); None for components that are not item-item
ITEM_ITEM = {
    "ease": ("ease", "binary"),
    "ease_recent": ("ease", "recent"),
    "ease_weights": ("ease_weights", "weights"),
    "bm25": ("bm25", "counts"),
    "bm25_recent": ("bm25", "recent"),
    "names": ("names", "recent"),
    "season": ("season", "recent"),
    "next": ("next", "latest"),
}
# component -> the stored users x items scores it reads (sparse: items with no score are absent)
SPARSE_SCORES = {"buy_again": "repeat", "due": "due", "tifu": "tifu", "tifu_explore": "tifu_explore"}
VECTORS = ("trending", "recent_buyers", "popularity")
COMPONENTS = ("lightfm", *ITEM_ITEM, *SPARSE_SCORES, *VECTORS)
Blocked = list[np.ndarray] | None  # per customer, the item columns the answer may not hold
TIE_BREAK = 1e-7  # popularity's weight in every blend: orders items the components leave tied
DENSE_ITEM_ITEM_LIMIT = 5_000  # 5,000 items: a 100 MB dense float32 matrix
POPULAR_CANDIDATES = 20  # the most popular items are always candidates (`candidate_ranks`)


def _row(matrix: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
    start, stop = matrix.indptr[row], matrix.indptr[row + 1]
    return matrix.indices[start:stop], matrix.data[start:stop]


def _blocked_row(blocked: Blocked, row: int) -> np.ndarray | None:
    return None if blocked is None else blocked[row]


def _weighted_rows(
    matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """weights · matrix[rows] as (columns, values): the sparse product for one customer."""
    if not len(rows):
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    starts, stops = matrix.indptr[rows], matrix.indptr[rows + 1]
    columns = np.concatenate([matrix.indices[a:b] for a, b in zip(starts, stops, strict=True)])
    values = np.concatenate([matrix.data[a:b] * w for a, b, w in zip(starts, stops, weights, strict=True)])
    unique, inverse = np.unique(columns, return_inverse=True)
    return unique, np.bincount(inverse, weights=values, minlength=len(unique)).astype(np.float32)


# what `HybridModel` keeps in its `__dict__` as it scores, computed once per model
SCORING_CACHES = ("_vector_ranks", "_dense", "_shared_blends", "_vector_lists", "normalized_items")


@dataclass
class HybridModel:
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_embedding: np.ndarray
    item_embedding: np.ndarray
    item_bias: np.ndarray
    item_feature_embedding: np.ndarray  # per item-feature column (for items placed by features alone)
    item_feature_bias: np.ndarray
    item_feature_names: list[str]
    similarity: dict[str, sp.csr_matrix]
    histories: dict[str, sp.csr_matrix]
    vectors: dict[str, np.ndarray]
    blends: dict[str, dict[str, float]] = field(default_factory=dict)
    candidates: int = 200
    rank_offset: float = 20.0
    info: dict[str, Any] = field(default_factory=dict)
    # each customer's LightFM top `candidates` items, best first (see precompute_lightfm_top);
    # a row of `unranked(dtype)` was not computed and is scored on the fly
    lightfm_top: np.ndarray | None = None
    # per customer: what the reranker reads of them (rerank.CUSTOMER_CONTEXT)
    customer_context: np.ndarray | None = None
    # protocol -> the learned reranker that replaces its linear blend (rerank.py)
    rerankers: dict[str, Reranker] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.user_index = pd.Series(np.arange(len(self.user_ids)), index=self.user_ids)
        self.item_index = pd.Series(np.arange(len(self.item_ids)), index=self.item_ids)

    def __getstate__(self) -> dict[str, Any]:
        """The model without what scoring caches (`SCORING_CACHES`; they refill where it is
        unpickled). A training run pickles a model for its second process in another
        thread while this one may be scoring with it, filling those caches: a dict that
        changes size while it is pickled fails the job."""
        state = dict(self.__dict__)  # one copy in C, which no other thread interleaves with
        for name in SCORING_CACHES:
            state.pop(name, None)
        return state

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def available(self) -> list[str]:
        names = [*VECTORS, *(["lightfm"] if self.user_embedding.shape[1] else [])]
        names += [name for name, history in SPARSE_SCORES.items() if history in self.histories]
        names += [
            name
            for name, (matrix, history) in ITEM_ITEM.items()
            if matrix in self.similarity and history in self.histories
        ]
        return [name for name in COMPONENTS if name in names]

    # -- scoring ----------------------------------------------------------------------

    def component_scores(self, name: str, users: np.ndarray) -> np.ndarray:
        scores = self._raw_scores(name, users)
        return scores.toarray() if isinstance(scores, sp.csr_matrix) else np.asarray(scores)

    def _raw_scores(self, name: str, users: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """Scores as computed: sparse where the component is (histories, item-item products
        on catalogues too large for a dense matrix), dense otherwise."""
        if name == "lightfm":
            return self.user_embedding[users] @ self.item_embedding.T + self.item_bias
        if name in SPARSE_SCORES:
            return sp.csr_matrix(self.histories[SPARSE_SCORES[name]][users])
        if name in VECTORS:
            return np.broadcast_to(self.vectors[name], (len(users), self.n_items))
        matrix, history = ITEM_ITEM[name]
        product = self.histories[history][users] @ self.item_item(matrix)
        return sp.csr_matrix(product) if sp.issparse(product) else np.asarray(product)

    def component_ranks(
        self, name: str, users: np.ndarray, blocked: Blocked = None
    ) -> np.ndarray | sp.csr_matrix:
        """`rank_scores` of a component over the items not `blocked`, computed the cheap way:
        once for the components that are the same for everyone, over the stored entries only
        for sparse ones (a customer with five purchases has a few hundred co-purchased items,
        not 20,000)."""
        if name in VECTORS:
            cache = self.__dict__.setdefault("_vector_ranks", {})
            if name not in cache:
                cache[name] = self.rank_scores(self.vectors[name][None, :].astype(np.float32))[0]
            return np.broadcast_to(cache[name], (len(users), self.n_items))
        ranked = self._ranked_rows(name, users, blocked)
        lengths = [len(columns) for columns, _ in ranked]
        return sp.csr_matrix(
            (
                np.concatenate([np.zeros(0, np.float32), *(values for _, values in ranked)]),
                np.concatenate([np.zeros(0, np.int32), *(columns for columns, _ in ranked)]),
                np.concatenate([[0], np.cumsum(lengths)]),
            ),
            shape=(len(users), self.n_items),
        )

    def _one_customer_entries(self, name: str, user: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The customer's stored (item, score) entries for a sparse component, or None for a
        dense one (a service request). The item-item product is a few rows of the matrix
        added up in NumPy: scipy's per-call overhead would cost more."""
        if name in SPARSE_SCORES:
            return _row(self.histories[SPARSE_SCORES[name]], user)
        matrix = self.item_item(ITEM_ITEM[name][0]) if name in ITEM_ITEM else None
        if not isinstance(matrix, sp.csr_matrix):
            return None
        return _weighted_rows(matrix, *_row(self.histories[ITEM_ITEM[name][1]], user))

    def _sparse_matrix(self, name: str, users: np.ndarray) -> sp.csr_matrix | None:
        """The customers' stored scores for a sparse component (users x items), or None for a
        dense one."""
        if name in SPARSE_SCORES:
            return sp.csr_matrix(self.histories[SPARSE_SCORES[name]][users])
        if name not in ITEM_ITEM:
            return None
        matrix_name, history_name = ITEM_ITEM[name]
        matrix = self.item_item(matrix_name)
        if not isinstance(matrix, sp.csr_matrix):
            return None
        return sp.csr_matrix(self.histories[history_name][users] @ matrix)

    def _rank_rows(
        self, matrix: sp.csr_matrix, blocked: Blocked = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`_rank_row` of every row of `matrix` at once: one sort of all the rows' stored
        positive entries that are not blocked (by row, then score descending, then item),
        cut at `candidates` a row. Where a tie spans a row's cut, which of the tied items
        stay is `_rank_row`'s choice (its partition's), so that row is ranked by it: the
        same lists either way. One call per customer (24,000 a validation fold of the large
        demo shop) took 1.3 of its 2.9 s of `scores_on`, against 0.6 s now."""
        n_rows, width = matrix.shape
        if not n_rows:
            return []
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(matrix.indptr))
        columns, values = matrix.indices.astype(np.int64), matrix.data
        keep = values > 0
        if blocked is not None:
            owner = np.repeat(np.arange(n_rows, dtype=np.int64), [len(items) for items in blocked])
            codes = owner * width + np.concatenate([np.zeros(0, np.int64), *blocked]).astype(np.int64)
            keep &= ~np.isin(rows * width + columns, codes)
        rows, columns, values = rows[keep], columns[keep], values[keep]
        order = np.lexsort((columns, -values, rows))
        rows, columns, values = rows[order], columns[order], values[order]
        counts = np.bincount(rows, minlength=n_rows)
        starts = np.cumsum(counts) - counts
        top = columns[np.arange(len(rows)) - starts[rows] < self.candidates].astype(np.int32)
        sizes = np.minimum(counts, self.candidates)
        ranked = [(part, self._rank_values(len(part))) for part in np.split(top, np.cumsum(sizes)[:-1])]
        over = np.flatnonzero(counts > self.candidates)
        cut = starts[over] + self.candidates
        for row in over[values[cut - 1] == values[cut]]:
            ranked[row] = self._rank_row(*_row(matrix, int(row)), _blocked_row(blocked, int(row)))
        return ranked

    def _rank_row(
        self, columns: np.ndarray, values: np.ndarray, blocked: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`rank_scores(positive_only=True)` of one sparse row: only stored positive entries
        that are not blocked can score, so only they are ranked. Ties go to the lower item."""
        positive = values > 0
        if blocked is not None and len(blocked):
            positive &= ~np.isin(columns, blocked)
        columns, values = columns[positive], values[positive]
        if len(values) > self.candidates:
            keep = np.argpartition(-values, self.candidates - 1)[: self.candidates]
            columns, values = columns[keep], values[keep]
        order = np.lexsort((columns, -values))
        return columns[order].astype(np.int32), self._rank_values(len(order))

    def item_item(self, name: str) -> np.ndarray | sp.csr_matrix:
        """The item-item matrix, dense for catalogues small enough (a sparse history times a
        dense matrix is several times faster), else sparse."""
        cache = self.__dict__.setdefault("_dense", {})
        if name not in cache:
            matrix = self.similarity[name]
            cache[name] = matrix.toarray() if self.n_items <= DENSE_ITEM_ITEM_LIMIT else matrix
        return cache[name]

    def rank_scores(self, scores: np.ndarray, positive_only: bool = True) -> np.ndarray:
        """1 / (rank + offset) for each row's top candidates, 0 elsewhere. With
        `positive_only` (every component but LightFM, whose scores are relative), an item
        without positive support (no co-purchase with the history, never bought) gets
        nothing, however high it would rank among the rest."""
        ranked, values = self._top_ranks(scores, positive_only)
        out = np.zeros(scores.shape, np.float32)
        out[np.arange(scores.shape[0])[:, None], ranked] = values
        return out

    def _top_ranks(self, scores: np.ndarray, positive_only: bool) -> tuple[np.ndarray, np.ndarray]:
        """Each row's top candidates (item columns, best first) and their rank scores; an
        item scored -inf (blocked) never gets a rank score."""
        top = min(self.candidates, scores.shape[1])
        ranked = best_columns(scores, top)
        ordered = np.take_along_axis(scores, ranked, axis=1)
        value = np.broadcast_to(self._rank_values(top), ranked.shape)
        keep = ordered > 0 if positive_only else np.isfinite(ordered)
        return ranked, np.where(keep, value, np.float32(0))

    def shared_blend(self, weights: dict[str, float]) -> np.ndarray:
        """The part of a blend that is the same for every customer (the weighted ranks of
        trending, recent buyers and popularity, and the tie-break), computed once."""
        return self._shared(weights)[0]

    def _shared(self, weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """The shared part of a blend and a mask of the items it ranks, cached per blend."""
        key = tuple(sorted((name, weight) for name, weight in weights.items() if weight and name in VECTORS))
        cache = self.__dict__.setdefault("_shared_blends", {})
        if key not in cache:
            popularity = self.vectors["popularity"]
            ranks = np.zeros(self.n_items, np.float32)
            for name, weight in key:
                ranks += weight * np.asarray(self.component_ranks(name, np.zeros(1, np.int64))[0])
            # a tiny popularity tie-break, so equal blends order by what sells
            shared = ranks + (TIE_BREAK * popularity / max(float(popularity.max()), 1.0)).astype(np.float32)
            shared.setflags(write=False)
            support = ranks > 0
            support.setflags(write=False)
            cache[key] = (shared, support)
        return cache[key]

    def precompute_lightfm_top(
        self, computed: np.ndarray | None = None, users: np.ndarray | None = None
    ) -> None:
        """Each customer's LightFM top candidates, computed once when the model is built:
        answering one customer then reads 200 item ids instead of multiplying and
        partially sorting 20,000 item vectors, which on a busy server (caches shared with
        other processes) was the largest part of a request. `computed`: the same, already
        computed from these representations (`lightfm_top_items`, by the training run's jobs).
        `users`: only theirs (a hybrid that scores no one else, as the test comparison's)."""
        shape = (len(self.user_ids), min(self.candidates, self.n_items))
        if computed is None or computed.shape != shape:  # not for these customers and items
            computed = lightfm_top_items(
                self.user_embedding, self.item_embedding, self.item_bias, self.candidates, users
            )
        self.lightfm_top = computed

    def blend_candidates(
        self, user: int, weights: dict[str, float], blocked: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One customer's blend on the items some component ranks (sorted item columns and
        their scores), each component ranking the items not `blocked`. Every other item
        scores the tie-break alone, below any ranked item with a positive weight, so a
        customer's top k lies here whenever enough of these are allowed; a service request
        then scores a few hundred items, not 20,000."""
        shared, support = self._shared(weights)
        total, ranked_anywhere = shared.copy(), support.copy()
        rows_blocked = None if blocked is None else [blocked]
        for name, weight in weights.items():
            if weight and name not in VECTORS:
                ranked, values = self._ranked_rows(name, np.array([user]), rows_blocked)[0]
                total[ranked] += weight * values
                ranked_anywhere[ranked] = True
        columns = np.flatnonzero(ranked_anywhere)
        return columns, total[columns]

    # -- a protocol's scores: its reranker where training adopted one, else its blend ---

    def candidate_ranks(
        self, users: np.ndarray, blocked: Blocked, components: list[str]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Each customer's candidates (users x width item columns, -1 padding): the items
        some component ranks among its top `candidates` (each over the items not `blocked`)
        and the most popular items; and each component's rank score of them. What the
        blend's tuning scores and the reranker reads (`rerank.union_candidates`)."""
        popular = np.argsort(-self.vectors["popularity"], kind="stable")[:POPULAR_CANDIDATES]
        if len(users) == 1:
            return self._one_customer_candidates(int(users[0]), _blocked_row(blocked, 0), components, popular)
        ranks = {name: self._sparse_ranks(name, users, blocked) for name in components}
        return union_candidates(ranks, popular, self.n_items)

    def _sparse_ranks(self, name: str, users: np.ndarray, blocked: Blocked) -> sp.csr_matrix:
        """`component_ranks` as a sparse matrix. A component the same for everyone repeats its
        ranked items in every row, built as such: from the dense rows, scipy's search for
        the nonzero entries of users x items took 0.7 of a large demo shop's validation
        fold's 2.9 s of `scores_on`."""
        if name not in VECTORS:
            return sp.csr_matrix(self.component_ranks(name, users, blocked))
        row = np.asarray(self.component_ranks(name, np.zeros(1, np.int64))[0])
        columns = np.flatnonzero(row).astype(np.int32)
        return sp.csr_matrix(
            (
                np.tile(row[columns], len(users)),
                np.tile(columns, len(users)),
                np.arange(len(users) + 1, dtype=np.int64) * len(columns),
            ),
            shape=(len(users), self.n_items),
        )

    def _one_customer_candidates(
        self, user: int, blocked: np.ndarray | None, components: list[str], popular: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`candidate_ranks` for one customer (a service request) from each component's
        ranked list, without a sparse matrix per component: scipy's per-matrix overhead was
        most of a reranked request (12 ms of it on the online-retail sample's model)."""
        ranked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in components:
            if name in VECTORS:
                cache = self.__dict__.setdefault("_vector_lists", {})
                if name not in cache:
                    row = np.asarray(self.component_ranks(name, np.zeros(1, np.int64))[0])
                    columns = np.flatnonzero(row)
                    cache[name] = (columns, row[columns])
                ranked[name] = cache[name]
            else:
                ranked[name] = self._ranked_rows(
                    name, np.array([user]), None if blocked is None else [blocked]
                )[0]
        ranked = {
            name: (columns[scores > 0], scores[scores > 0]) for name, (columns, scores) in ranked.items()
        }
        candidates = np.unique(np.concatenate([popular, *(columns for columns, _ in ranked.values())]))
        values = {}
        for name, (columns, scores) in ranked.items():
            value = np.zeros(len(candidates), np.float32)
            value[np.searchsorted(candidates, columns)] = scores
            values[name] = value[None, :]
        return candidates[None, :].astype(np.int64), values

    def candidate_context(self, users: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """What the reranker reads of the candidates and customers besides ranks (`rerank.CONTEXT`)."""
        if self.customer_context is None:
            raise ValueError("this model has no customer context: it was built before the reranker")
        return context_features(
            self.vectors["popularity"],
            self.vectors["recent_buyers"],
            self.customer_context[users],
            candidates,
        )

    def reranked(
        self, users: np.ndarray, reranker: Reranker, blocked: Blocked = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each customer's candidates (-1 padding) and the reranker's probability of each
        being bought (0 on padding)."""
        candidates, values = self.candidate_ranks(users, blocked, reranker.components)
        features = candidate_features(values, reranker.components, self.candidate_context(users, candidates))
        scored = reranker.scored(values, candidates)
        probability = np.zeros(candidates.shape, np.float32)
        probability[scored] = reranker.trees.probability(features[scored])
        return candidates, probability

    def protocol_scores(self, users: np.ndarray, protocol: str, blocked: Blocked = None) -> np.ndarray:
        """`blend_scores` of the protocol's blend, or its reranker's probabilities on the
        candidates (every other item scores the tie-break alone, as in a blend)."""
        reranker = self.rerankers.get(protocol)
        if reranker is None:
            return self.blend_scores(users, self.blends[protocol], blocked)
        total = np.tile(self.shared_blend({}), (len(users), 1))
        candidates, probability = self.reranked(users, reranker, blocked)
        rows, columns = np.nonzero(candidates >= 0)
        total[rows, candidates[rows, columns]] += probability[rows, columns]
        return total

    def protocol_candidates(
        self, user: int, protocol: str, blocked: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`blend_candidates` for the protocol's blend or reranker (module docstring)."""
        reranker = self.rerankers.get(protocol)
        if reranker is None:
            return self.blend_candidates(user, self.blends[protocol], blocked)
        candidates, probability = self.reranked(
            np.array([user]), reranker, None if blocked is None else [blocked]
        )
        real = candidates[0] >= 0
        columns = candidates[0][real]
        return columns, probability[0][real] + self.shared_blend({})[columns]

    def protocol_shared(self, protocol: str) -> np.ndarray:
        """What an item no component ranks scores under the protocol (`shared_blend`)."""
        return self.shared_blend({} if protocol in self.rerankers else self.blends[protocol])

    def blend_scores(
        self, users: np.ndarray, weights: dict[str, float], blocked: Blocked = None
    ) -> np.ndarray:
        """The blend for each customer over every item, each component ranking the items
        not `blocked` for that customer (blocked items keep whatever the shared part gives
        them; the caller masks them)."""
        total = np.tile(self.shared_blend(weights), (len(users), 1))
        for name, weight in weights.items():
            if weight and name not in VECTORS:
                for row, (ranked, values) in enumerate(self._ranked_rows(name, users, blocked)):
                    total[row, ranked] += weight * values
        return total

    def _ranked_rows(
        self, name: str, users: np.ndarray, blocked: Blocked = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each customer's ranked items for a component that differs by customer (item
        columns, best first, and their rank scores), `blocked` items left out before
        ranking: LightFM's precomputed top where the model has it, sparse components over
        their stored entries, the rest from scores."""
        if name == "lightfm" and self.lightfm_top is not None:
            top = self.lightfm_top[users]
            computed = top[:, 0] != unranked(top.dtype) if top.shape[1] else np.ones(len(users), bool)
            rest = np.flatnonzero(~computed)  # rows not precomputed: scored here
            scored = iter(
                self._scored_rows(name, users[rest], None if blocked is None else [blocked[i] for i in rest])
                if len(rest)
                else []
            )
            return [
                self._rank_list(top[row].astype(np.int64), _blocked_row(blocked, row))
                if computed[row]
                else next(scored)
                for row in range(len(users))
            ]
        return self._scored_rows(name, users, blocked)

    def _scored_rows(
        self, name: str, users: np.ndarray, blocked: Blocked = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`_ranked_rows` without LightFM's precomputed top."""
        if len(users) == 1 and (entries := self._one_customer_entries(name, int(users[0]))) is not None:
            return [self._rank_row(*entries, _blocked_row(blocked, 0))]
        if len(users) != 1 and (matrix := self._sparse_matrix(name, users)) is not None:
            return self._rank_rows(matrix, blocked)
        scores = np.asarray(self._raw_scores(name, users), np.float32)
        if blocked is not None:
            for row, items in enumerate(blocked):
                scores[row, items] = -np.inf
        ranked, values = self._top_ranks(scores, positive_only=name != "lightfm")
        return list(zip(ranked, values, strict=True))

    def _rank_list(self, ranked: np.ndarray, blocked: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """A precomputed best-first list with the blocked items taken out, ranked again."""
        if blocked is not None and len(blocked):
            ranked = ranked[~np.isin(ranked, blocked)]
        return ranked, self._rank_values(len(ranked))

    def _rank_values(self, count: int) -> np.ndarray:
        """1 / (rank + offset) for ranks 0 .. count - 1."""
        return (1.0 / (np.arange(count) + self.rank_offset)).astype(np.float32)

    # -- serving helpers --------------------------------------------------------------

    def item_vectors_normalized(self) -> np.ndarray:
        if "normalized_items" not in self.__dict__:
            norms = np.linalg.norm(self.item_embedding, axis=1, keepdims=True)
            norms[norms == 0] = 1
            self.__dict__["normalized_items"] = (self.item_embedding / norms).astype(np.float32)
        return self.__dict__["normalized_items"]

    def similar_scores(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Similarity of every item to a set of items: LightFM embedding cosine blended by
        rank with co-purchase (EASE where present, else BM25)."""
        # float32 like the vectors: a float64 weight would convert all 20,000 vectors per call
        weights = np.ones(len(items), np.float32) if weights is None else np.asarray(weights, np.float32)
        vectors = self.item_vectors_normalized()
        embedding = (weights @ vectors[items]) @ vectors.T
        matrix = self.similarity.get("ease") if "ease" in self.similarity else self.similarity.get("bm25")
        parts = [self.rank_scores(embedding[None, :].astype(np.float32), positive_only=False)]
        if matrix is not None:
            co = np.asarray(sp.csr_matrix(weights.reshape(1, -1)) @ matrix[items].toarray()).ravel()
            if co.max() > 0:
                parts.append(self.rank_scores(co[None, :].astype(np.float32)))
        total = np.sum(parts, axis=0)[0]
        total[items] = -np.inf
        return total

    def complement_scores(self, cart: np.ndarray) -> np.ndarray:
        """Items bought with the cart's items: co-purchase first (BM25 or EASE), the
        embedding only to order what co-purchase leaves tied."""
        matrix = self.similarity.get("bm25") if "bm25" in self.similarity else self.similarity.get("ease")
        co = np.zeros(self.n_items, np.float32)
        if matrix is not None:
            co = np.asarray(matrix[cart].sum(axis=0)).ravel().astype(np.float32)
        embedding = self.similar_scores(cart)
        embedding[cart] = 0
        total = (
            self.rank_scores(co[None, :])[0] * 2
            + self.rank_scores(embedding[None, :], positive_only=False)[0] * 0.5
        )
        total[cart] = -np.inf
        return total

    def feature_representation(self, feature_names: list[str]) -> tuple[np.ndarray, float]:
        """A new item's LightFM representation from its features alone (unknown features
        are ignored), normalized like the training rows."""
        index = {name: i for i, name in enumerate(self.item_feature_names)}
        known = [index[name] for name in feature_names if name in index]
        if not known:
            return np.zeros(self.item_embedding.shape[1], np.float32), 0.0
        weight = 1.0 / len(known)
        return self.item_feature_embedding[known].sum(axis=0) * weight, float(
            self.item_feature_bias[known].sum() * weight
        )

    # -- persistence ------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {
            "user_ids": self.user_ids.astype(str),
            "item_ids": self.item_ids.astype(str),
            "user_embedding": self.user_embedding,
            "item_embedding": self.item_embedding,
            "item_bias": self.item_bias,
            "item_feature_embedding": self.item_feature_embedding,
            "item_feature_bias": self.item_feature_bias,
            **{f"vector_{name}": vector for name, vector in self.vectors.items()},
            **({} if self.customer_context is None else {"customer_context": self.customer_context}),
            **{
                name: array
                for protocol, reranker in self.rerankers.items()
                for name, array in reranker.trees.arrays(f"rerank_{protocol}_").items()
            },
        }
        # uncompressed: compressing the sample's matrices took 1.5 s at the end of every
        # training run (0.06 s uncompressed; nothing else runs then) for 11 MB instead of
        # 22; bundles written compressed still load
        np.savez(directory / "arrays.npz", **arrays)  # type: ignore[arg-type]
        if self.lightfm_top is not None:
            np.save(directory / "lightfm_top.npy", self.lightfm_top)
        for kind, matrices in (("similarity", self.similarity), ("history", self.histories)):
            for name, matrix in matrices.items():
                sp.save_npz(directory / f"{kind}_{name}.npz", matrix.tocsr(), compressed=False)
        meta = {
            "item_feature_names": self.item_feature_names,
            "blends": self.blends,
            "candidates": self.candidates,
            "rank_offset": self.rank_offset,
            "similarity": sorted(self.similarity),
            "histories": sorted(self.histories),
            "vectors": sorted(self.vectors),
            "rerankers": {
                protocol: {
                    "components": reranker.components,
                    "baseline": reranker.trees.baseline,
                    "depth": reranker.trees.depth,
                    "min_rank_score": reranker.min_rank_score,
                    "info": reranker.info,
                }
                for protocol, reranker in self.rerankers.items()
            },
            "info": self.info,
        }
        (directory / "model.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> HybridModel:
        meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
            data = {name: arrays[name] for name in arrays.files}
        return cls(
            user_ids=data["user_ids"].astype(object),
            item_ids=data["item_ids"].astype(object),
            user_embedding=data["user_embedding"],
            item_embedding=data["item_embedding"],
            item_bias=data["item_bias"],
            item_feature_embedding=data["item_feature_embedding"],
            item_feature_bias=data["item_feature_bias"],
            item_feature_names=meta["item_feature_names"],
            similarity={
                name: sp.load_npz(directory / f"similarity_{name}.npz").tocsr() for name in meta["similarity"]
            },
            histories={
                name: sp.load_npz(directory / f"history_{name}.npz").tocsr() for name in meta["histories"]
            },
            vectors={name: data[f"vector_{name}"] for name in meta["vectors"]},
            blends=meta["blends"],
            candidates=meta["candidates"],
            rank_offset=meta["rank_offset"],
            info=meta["info"],
            lightfm_top=np.load(top) if (top := directory / "lightfm_top.npy").exists() else None,
            customer_context=data.get("customer_context"),
            rerankers={
                protocol: Reranker(
                    spec["components"],
                    TreeEnsemble.from_arrays(data, f"rerank_{protocol}_", spec["baseline"], spec["depth"]),
                    spec["info"],
                    spec["min_rank_score"],
                )
                for protocol, spec in meta.get("rerankers", {}).items()
            },
        )


def best_columns(scores: np.ndarray, top: int) -> np.ndarray:
    """Each row's `top` highest-scoring columns, best first (equal scores in the order the
    partition left them: the same for the same scores)."""
    part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def unranked(dtype: np.dtype[Any]) -> int:
    """The value of a precomputed top-items row that was not computed (never an item column:
    `lightfm_top_items` picks a type wider than the catalogue needs)."""
    return int(np.iinfo(dtype).max)


LIGHTFM_TOP_BATCH = 1024  # customers scored at once by `lightfm_top_items`


def lightfm_top_items(
    user_embedding: np.ndarray,
    item_embedding: np.ndarray,
    item_bias: np.ndarray,
    candidates: int,
    users: np.ndarray | None = None,
    batch: int = LIGHTFM_TOP_BATCH,
) -> np.ndarray:
    """Every customer's `candidates` best items by LightFM (float32 scores, best first), as
    `HybridModel.precompute_lightfm_top` keeps them; with `users`, theirs only (the other
    rows are `unranked`). A pure function of the representations, so the training run
    computes it in jobs either process takes (on the large demo shop it was 10 s of the
    final fit, in the run's main process; `training.recommender.background.submit_top_items`)."""
    n_users, n_items = len(user_embedding), len(item_embedding)
    top = min(candidates, n_items)
    dtype = np.dtype(np.uint16 if n_items < 2**16 else np.int32)
    ranked = np.full((n_users, top), unranked(dtype), dtype)
    rows = np.arange(n_users) if users is None else np.unique(users)
    embedding = np.asarray(user_embedding, np.float32)
    items = np.asarray(item_embedding, np.float32).T
    bias = np.asarray(item_bias, np.float32)
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        scores = np.asarray(embedding[chunk] @ items + bias, np.float32)
        ranked[chunk] = best_columns(scores, top)
    return ranked
