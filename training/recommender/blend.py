"""Tuning the hybrid's blend weights on the validation folds, never on the test weeks.

Each fold's component scores are ranked once; coordinate ascent then moves one weight at
a time over the grid, keeping a change only if the mean NDCG@10 over the folds improves.
It starts from the best single component, so the blend is never worse on validation than
its best part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from inference.recommender.scoring import HybridModel
from training.recommender.data import Truth
from training.recommender.evaluate import Protocol, effective_truth
from training.recommender.metrics import ranking_metrics, top_k

MAX_TUNING_USERS = 1500


@dataclass
class FoldScores:
    """One fold's component ranks, restricted to each user's candidates (the union of
    every component's top candidates and the most popular items): a weighted sum over
    these equals the full blend wherever the top 10 can come from, at a fraction of the size."""

    candidates: np.ndarray  # users x width item indices (padded with -1)
    values: dict[str, np.ndarray]  # component -> users x width rank scores
    blocked: np.ndarray  # users x width: excluded by the protocol, or padding
    targets: list[np.ndarray]
    tie_break: np.ndarray  # users x width


def fold_scores(model: HybridModel, truth: Truth, protocol: Protocol, seed: int = 0) -> FoldScores:
    targets = effective_truth(truth, protocol)
    keep = np.flatnonzero([len(items) > 0 for items in targets])
    if len(keep) > MAX_TUNING_USERS:
        keep = np.sort(np.random.default_rng(seed).choice(keep, MAX_TUNING_USERS, replace=False))
    users = truth.user_index[keep]
    popular = np.argsort(-model.vectors["popularity"], kind="stable")[:20]
    ranks = {}
    union = sp.csr_matrix((len(users), model.n_items), dtype=np.float32)
    for name in model.available:
        ranked = sp.csr_matrix(model.component_ranks(name, users))
        ranks[name] = ranked
        union = union + (ranked > 0).astype(np.float32)
    union = union.tolil()
    for row in range(len(users)):
        union[row, popular] = 1
    union = union.tocsr()
    width = int(np.diff(union.indptr).max()) if len(users) else 1
    candidates = np.full((len(users), width), -1, np.int64)
    for row in range(len(users)):
        items = union.indices[union.indptr[row] : union.indptr[row + 1]]
        candidates[row, : len(items)] = items
    safe = np.maximum(candidates, 0)
    values = {name: _gather(matrix, safe) for name, matrix in ranks.items()}
    blocked = (candidates < 0) | _gather(protocol.excluded[users].astype(np.float32), safe).astype(bool)
    popularity = model.vectors["popularity"] / max(float(model.vectors["popularity"].max()), 1.0)
    return FoldScores(
        candidates, values, blocked, [targets[i] for i in keep], (1e-7 * popularity[safe]).astype(np.float32)
    )


def _gather(matrix: sp.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """matrix[row, columns[row, j]] for every row and j, without densifying the matrix."""
    out = np.zeros(columns.shape, np.float32)
    for row in range(columns.shape[0]):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        indices, data = matrix.indices[start:stop], matrix.data[start:stop]
        if len(indices):
            order = np.argsort(indices)
            position = np.searchsorted(indices[order], columns[row])
            position = np.minimum(position, len(indices) - 1)
            found = indices[order][position] == columns[row]
            out[row] = np.where(found, data[order][position], 0)
    return out


def fold_ndcg(fold: FoldScores, weights: dict[str, float]) -> float:
    if not fold.targets:
        return 0.0
    total = fold.tie_break.copy()
    for name, weight in weights.items():
        if weight:
            total += weight * fold.values[name]
    total[fold.blocked] = -np.inf
    best = top_k(total, 10)
    items = np.take_along_axis(fold.candidates, best, axis=1)
    return ranking_metrics(items, fold.targets, ks=(10,))["ndcg_at_10"]


def tune(
    folds: list[FoldScores], components: list[str], grid: tuple[float, ...], passes: int
) -> tuple[dict[str, float], float, dict[str, float]]:
    """Best weights, their mean validation NDCG@10, and each component's alone."""

    def mean_ndcg(weights: dict[str, float]) -> float:
        return float(np.mean([fold_ndcg(fold, weights) for fold in folds]))

    singles = {name: mean_ndcg({name: 1.0}) for name in components}
    best_name = max(singles, key=lambda name: singles[name])
    weights = {name: 0.0 for name in components}
    weights[best_name] = 1.0
    best = singles[best_name]
    for _ in range(passes):
        improved = False
        for name in components:
            for value in grid:
                if value == weights[name]:
                    continue
                trial = {**weights, name: value}
                if not any(trial.values()):
                    continue
                score = mean_ndcg(trial)
                if score > best + 1e-6:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return {name: weight for name, weight in weights.items() if weight}, best, singles
