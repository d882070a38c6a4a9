"""The learned reranker: gradient-boosted trees over the blend's candidates, as the service
scores them (NumPy alone; training fits the trees, `training/recommender/rerank.py`).

A linear blend gives every customer the same mix of components. The trees read each
candidate's rank in every component together with what the linear blend cannot see: how
popular the item is and how much of that is lately, and how much history the customer
has and how long ago their last basket was. So a customer with two baskets can lean on
what sells this month while a customer with forty leans on their co-purchases, and an
item that several components rank moderately can beat one that a single component ranks
first. Training adopts it per protocol from its gain over the tuned blend on validation
folds it was not fitted on: under discovery unless clearly worse, elsewhere only if clearly
better (`training/recommender/rerank.py` says why).

The candidates are the blend's: the union of every component's top `candidates` items
(over the items the protocol allows) and the most popular items, the same set the blend's
tuning scores (`HybridModel.candidate_ranks` and `candidate_context`, shared by training
and serving, so the trees see at serving exactly the features they were fitted on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

# what the trees read besides each component's rank score (`context_features`)
CONTEXT = (
    "item_buyers",  # log(1 + distinct buyers)
    "item_recent_buyers",  # log(1 + buyers in the last trending_days)
    "item_recent_share",  # recent buyers / all buyers, smoothed
    "customer_baskets",  # log(1 + baskets before the cutoff)
    "customer_days_since",  # days from the customer's latest basket to the cutoff
    "customer_items",  # log(1 + distinct items the customer bought)
)
CUSTOMER_CONTEXT = ("baskets", "days_since", "items")  # HybridModel.customer_context's columns
NO_BASKET_DAYS = 10_000.0  # "days since the latest basket" of a customer with none


@dataclass
class TreeEnsemble:
    """Boosted trees as flat arrays (every tree's nodes one after another): a node goes to
    `left` when its feature is at most `threshold`, else to `right`; a leaf points to
    itself and holds its `value`. The log-odds of a row are `baseline` plus its leaves'
    values. Walking every tree at once, one level per step, is a few NumPy gathers per
    level: a service request's few hundred candidates in a few milliseconds."""

    feature: np.ndarray  # int32
    threshold: np.ndarray  # float64
    left: np.ndarray  # int32 (global node index)
    right: np.ndarray  # int32
    value: np.ndarray  # float64 (leaves; 0 elsewhere)
    roots: np.ndarray  # int32: each tree's first node
    baseline: float
    depth: int  # the deepest leaf's depth: the walk's number of steps

    ROWS_PER_CHUNK = 4096

    def __post_init__(self) -> None:
        # the walk's index arrays, once per model rather than once per request
        self._children = np.stack([self.left, self.right], axis=1).ravel().astype(np.intp)
        self._feature, self._roots = self.feature.astype(np.intp), self.roots.astype(np.intp)

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """Each row's log-odds: every tree walked at once, one level per step (a gather of
        the node's feature from the flattened rows, a comparison, a gather of the child)."""
        x = np.asarray(x, np.float64)
        children, feature, roots = self._children, self._feature, self._roots
        out = np.empty(len(x), np.float64)
        for start in range(0, len(x), self.ROWS_PER_CHUNK):
            chunk = np.ascontiguousarray(x[start : start + self.ROWS_PER_CHUNK])
            flat = chunk.ravel()
            row_start = (np.arange(len(chunk), dtype=np.intp) * chunk.shape[1])[:, None]
            node = np.broadcast_to(roots[None, :], (len(chunk), len(roots)))
            for _ in range(self.depth):
                goes_right = flat[row_start + feature[node]] > self.threshold[node]
                node = children[2 * node + goes_right]
            out[start : start + len(chunk)] = self.baseline + self.value[node].sum(axis=1)
        return out

    def probability(self, x: np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-self.log_odds(x)))).astype(np.float32)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        names = ("feature", "threshold", "left", "right", "value", "roots")
        return {f"{prefix}{name}": getattr(self, name) for name in names}

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], prefix: str, baseline: float, depth: int
    ) -> TreeEnsemble:
        names = ("feature", "threshold", "left", "right", "value", "roots")
        return cls(**{name: arrays[f"{prefix}{name}"] for name in names}, baseline=baseline, depth=depth)


@dataclass
class Reranker:
    """One protocol's trees and the components whose rank scores they read (in order,
    then `CONTEXT`)."""

    components: list[str]
    trees: TreeEnsemble
    info: dict[str, Any]
    # the trees score a candidate only if some component ranks it at least this high (its
    # rank score: the top `rerank.top_per_component` of some component); the others keep the
    # tie-break alone. Fewer rows to fit and walk, and what lies deeper in every component
    # seldom reaches a top ten
    min_rank_score: float = 0.0

    @property
    def feature_names(self) -> list[str]:
        return [*self.components, *CONTEXT]

    def scored(self, values: dict[str, np.ndarray], candidates: np.ndarray) -> np.ndarray:
        return scored_candidates(values, self.components, candidates, self.min_rank_score)


def scored_candidates(
    values: dict[str, np.ndarray], components: list[str], candidates: np.ndarray, min_rank_score: float
) -> np.ndarray:
    """Which candidates (users x width, -1 padding) the trees score: those some component
    ranks at least `min_rank_score` high (`Reranker.min_rank_score`)."""
    strongest = np.zeros(candidates.shape, np.float32)
    for name in components:
        np.maximum(strongest, values[name], out=strongest)
    return (candidates >= 0) & (strongest >= np.float32(min_rank_score))


def union_candidates(
    ranks: dict[str, sp.csr_matrix], popular: np.ndarray, n_items: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each customer's candidates (users x width item columns, ascending, -1 padding): the
    items some component ranks (`ranks`: component -> users x items rank scores) and the
    `popular` items; and each component's rank score of them (0 on padding)."""
    n_users = next(iter(ranks.values())).shape[0] if ranks else 0
    union = sp.csr_matrix(
        (
            np.ones(n_users * len(popular)),
            (np.repeat(np.arange(n_users), len(popular)), np.tile(popular, n_users)),
        ),
        shape=(n_users, n_items),
    )
    for ranked in ranks.values():
        union = union + (ranked > 0).astype(np.float64)
    union = sp.csr_matrix(union)
    union.sort_indices()
    lengths = np.diff(union.indptr)
    width = int(lengths.max()) if n_users else 1
    filled = np.arange(width)[None, :] < lengths[:, None]
    candidates = np.full((n_users, width), -1, np.int64)
    candidates[filled] = union.indices
    # the union's entries in order (by customer, then item) and where each lands in `candidates`
    codes = np.repeat(np.arange(n_users, dtype=np.int64), lengths) * n_items + union.indices
    slots = np.flatnonzero(filled)
    return candidates, {
        name: spread(matrix, codes, slots, candidates.shape) for name, matrix in ranks.items()
    }


def spread(matrix: sp.csr_matrix, codes: np.ndarray, slots: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`matrix`'s stored values at the candidates (users x width, 0 elsewhere): each stored
    entry is found among the union's (row, column) `codes` (ascending, as in
    `union_candidates`) and written to its slot (flat index into `shape`). Looking up the
    matrix's few hundred entries a customer among the candidates, rather than every
    candidate among the entries (`gather`), took 0.75 of a large demo shop's validation fold's
    2.9 s of `scores_on`, against about 0.1 s now."""
    matrix = sp.csr_matrix(matrix)
    out = np.zeros(shape[0] * shape[1], np.float32)
    if not len(codes) or not matrix.nnz:
        return out.reshape(shape)
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    entries = rows * matrix.shape[1] + matrix.indices
    position = np.minimum(np.searchsorted(codes, entries), len(codes) - 1)
    found = codes[position] == entries
    out[slots[position[found]]] = matrix.data[found]
    return out.reshape(shape)


def context_features(
    buyers: np.ndarray, recent_buyers: np.ndarray, customers: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """users x width x len(CONTEXT) (`CONTEXT`): from the items' distinct buyers and recent
    buyers, and the customers' rows of `customer_context`."""
    safe = np.maximum(candidates, 0)
    buyers = np.asarray(buyers, np.float64)[safe]
    recent = np.asarray(recent_buyers, np.float64)[safe]
    customer = np.asarray(customers, np.float64)
    shape = candidates.shape
    columns = [
        np.log1p(buyers),
        np.log1p(recent),
        (recent + 1.0) / (buyers + 5.0),
        np.broadcast_to(np.log1p(customer[:, 0])[:, None], shape),
        np.broadcast_to(customer[:, 1][:, None], shape),
        np.broadcast_to(np.log1p(customer[:, 2])[:, None], shape),
    ]
    return np.stack(columns, axis=-1).astype(np.float32)


def candidate_features(
    values: dict[str, np.ndarray], components: list[str], context: np.ndarray
) -> np.ndarray:
    """users x width x features: the components' rank scores (in `components`' order), then
    the context."""
    ranks = np.stack([np.asarray(values[name], np.float32) for name in components], axis=-1)
    return np.concatenate([ranks, context], axis=-1)


def customer_context(basket_user: np.ndarray, basket_age: np.ndarray, bought: sp.csr_matrix) -> np.ndarray:
    """Per customer (rows of `bought`): baskets before the cutoff, days from the latest one
    to the cutoff (NO_BASKET_DAYS with none) and distinct items bought (`CUSTOMER_CONTEXT`)."""
    n_users = bought.shape[0]
    baskets = np.bincount(basket_user, minlength=n_users).astype(np.float32)
    days_since = np.full(n_users, NO_BASKET_DAYS, np.float32)
    np.minimum.at(days_since, basket_user, np.asarray(basket_age, np.float32))
    items = np.diff(sp.csr_matrix(bought).indptr).astype(np.float32)
    return np.stack([baskets, days_since, items], axis=1)


def gather(matrix: sp.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """matrix[row, columns[row, j]] for every row and j, without densifying the matrix: one
    sorted lookup of (row, column) codes for the whole batch."""
    matrix = sp.csr_matrix(matrix)
    matrix.sort_indices()
    stride = max(matrix.shape[1], 1)
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return lookup(rows * stride + matrix.indices, matrix.data.astype(np.float32), columns, stride)


def lookup(codes: np.ndarray, values: np.ndarray, columns: np.ndarray, stride: int) -> np.ndarray:
    """values at the (row, column) codes, for every row and column of `columns` (0 if absent);
    `codes` sorted ascending."""
    if not len(codes):
        return np.zeros(columns.shape, np.float32)
    probe = np.arange(columns.shape[0], dtype=np.int64)[:, None] * stride + columns
    position = np.minimum(np.searchsorted(codes, probe), len(codes) - 1)
    return np.where(codes[position] == probe, values[position], 0).astype(np.float32)
