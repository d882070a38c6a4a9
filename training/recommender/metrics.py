"""Ranking metrics at k, for every model alike.

Relevance is binary (the user bought the item in the window). Per user:
- precision@k = hits in the top k / k; recall@k = hits / |truth|;
- NDCG@k = DCG / ideal DCG, DCG = sum over hits of 1 / log2(rank + 1);
- MAP@k (AP@k averaged) = sum over hits of precision at that rank / min(|truth|, k);
- hit rate@k = 1 if any hit.
Averaged over users with a non-empty truth. Catalogue coverage is the share of items
that appear in anyone's top k; novelty is the mean self-information -log2(p) of the
recommended items, p being the item's share of buyers in training.
"""

from __future__ import annotations

import numpy as np

KS = (5, 10, 20)
METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


def hit_matrix(ranked: np.ndarray, truth: list[np.ndarray], width: int) -> np.ndarray:
    """hits[u, r] = the item at rank r of user u was bought (vectorized via a sorted
    (user, item) code lookup, no per-user loop)."""
    n_users = ranked.shape[0]
    if n_users == 0:
        return np.zeros((0, width), bool)
    n_items = int(max(ranked.max(initial=0), max((items.max(initial=0) for items in truth), default=0))) + 1
    sizes = np.array([len(items) for items in truth])
    codes = np.repeat(np.arange(n_users, dtype=np.int64), sizes) * n_items + np.concatenate(truth).astype(
        np.int64
    )
    codes.sort()
    probe = np.arange(n_users, dtype=np.int64)[:, None] * n_items + ranked[:, :width].astype(np.int64)
    position = np.searchsorted(codes, probe)
    position = np.minimum(position, len(codes) - 1) if len(codes) else position
    hits = (codes[position] == probe) if len(codes) else np.zeros(probe.shape, bool)
    return hits & (ranked[:, :width] >= 0)  # -1 pads a list shorter than k


def ranking_metrics(
    ranked: np.ndarray, truth: list[np.ndarray], ks: tuple[int, ...] = KS
) -> dict[str, float]:
    """`ranked`: users x max(k) item indices, best first; `truth`: item indices per user."""
    max_k = min(max(ks), ranked.shape[1])
    sizes = np.array([len(items) for items in truth], float)
    valid = sizes > 0
    hits_all = hit_matrix(ranked, truth, max_k)
    discounts = 1 / np.log2(np.arange(2, max_k + 2))
    ideal_cumulative = np.cumsum(discounts)
    results: dict[str, float] = {}
    for k in ks:
        k_eff = min(k, max_k)
        h = hits_all[valid, :k_eff]
        size = sizes[valid]
        n_hits = h.sum(axis=1)
        ideal = ideal_cumulative[np.minimum(size, k_eff).astype(int) - 1]
        precision_at_rank = np.cumsum(h, axis=1) / np.arange(1, k_eff + 1)
        results[f"precision_at_{k}"] = float(np.mean(n_hits / k))
        results[f"recall_at_{k}"] = float(np.mean(n_hits / size))
        results[f"ndcg_at_{k}"] = float(np.mean((h * discounts[:k_eff]).sum(axis=1) / ideal))
        results[f"map_at_{k}"] = float(np.mean((precision_at_rank * h).sum(axis=1) / np.minimum(size, k)))
        results[f"hit_rate_at_{k}"] = float(np.mean(n_hits > 0))
    return results


def coverage(ranked: np.ndarray, n_items: int, k: int = 10) -> float:
    return float(len(np.unique(ranked[:, :k])) / n_items)


def novelty(ranked: np.ndarray, popularity: np.ndarray, k: int = 10) -> float:
    share = (popularity + 1) / (popularity.sum() + len(popularity))
    return float(np.mean(-np.log2(share[ranked[:, :k]])))


def per_user_ndcg(ranked: np.ndarray, truth: list[np.ndarray], k: int = 10) -> np.ndarray:
    """Each user's NDCG@k (users with an empty truth get 0; callers leave them out)."""
    width = min(k, ranked.shape[1])
    hits = hit_matrix(ranked, truth, width)
    sizes = np.array([len(items) for items in truth], dtype=np.int64)  # int even with no users
    discounts = 1 / np.log2(np.arange(2, width + 2))
    ideal = np.cumsum(discounts)[np.maximum(np.minimum(sizes, width), 1) - 1]
    return np.where(sizes > 0, (hits * discounts).sum(axis=1) / ideal, 0.0)
