"""Evaluation of any model on a split, under a protocol, in flat records.

Protocols decide what a customer's earlier purchases mean:
- `discovery`: items bought before the cutoff (kept or sent back) are removed from the
  candidates and from the truth (what is new to the customer);
- `all_purchases`: nothing removed; buying again counts;
- `business_rules`: items bought before in a one-time category (config) are removed
  from candidates and truth; repeatable categories may come back.
Every model is masked the same way, so the numbers compare.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits  # a requirement of scikit-learn

from inference.recommender.topk import top_k
from training.recommender.data import TrainData, Truth
from training.recommender.metrics import (
    KS,
    coverage,
    novelty,
    per_user_ndcg,
    ranking_metrics,
)
from training.recommender.models import Recommender

PROTOCOLS = ("discovery", "all_purchases", "business_rules")
BATCH = 512


@dataclass(frozen=True)
class Protocol:
    name: str
    excluded: sp.csr_matrix  # users x items: True where the item may not be recommended


def make_protocol(name: str, data: TrainData, one_time_items: np.ndarray) -> Protocol:
    """`name`'s exclusions: what the customer ever bought (returned in full or not: not new
    to them, and a check of discovery from the raw orders counts it as bought)."""
    bought = data.ever_bought
    if name == "discovery":
        excluded = bought
    elif name == "all_purchases":
        excluded = sp.csr_matrix(bought.shape, dtype=bool)
    elif name == "business_rules":
        excluded = bought.multiply(sp.csr_matrix(one_time_items.reshape(1, -1)))
    else:
        raise ValueError(f"unknown protocol '{name}'; use one of {', '.join(PROTOCOLS)}")
    return Protocol(name, sp.csr_matrix(excluded, dtype=bool))


def batches(n: int, size: int = BATCH) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def batch_aligned_parts(users: np.ndarray, parts: int, batch: int = BATCH) -> list[np.ndarray]:
    """`users` in at most `parts` consecutive parts (one, possibly empty, when there are
    none), cut only between batches of `batch` (`batches`'): each part is scored in the very
    batches one call over all of them would use (a model's scores may depend on a batch's
    shape: a BLAS product's blocking, one customer's own path)."""
    n_batches = -(-len(users) // batch)
    per_part = max(-(-n_batches // parts), 1) * batch
    return [users[start : start + per_part] for start in range(0, len(users), per_part)] or [users]


def effective_truth(truth: Truth, protocol: Protocol) -> list[np.ndarray]:
    """Each user's truth without the items the protocol excludes for them (every item the
    exclusions store for the user, whatever its value): sorted and unique where something
    was excluded, as `np.setdiff1d` gives it, else the truth as it was. All users at once:
    one `setdiff1d` per user was 0.3 s a call on the large demo shop, and early stopping
    calls it every epoch."""
    excluded = protocol.excluded
    result = list(truth.items)
    users = np.asarray(truth.user_index, np.int64)
    rows = np.flatnonzero(excluded.indptr[users + 1] > excluded.indptr[users])
    if not len(rows):
        return result
    sizes = np.array([len(truth.items[row]) for row in rows])
    items = np.concatenate([np.asarray(truth.items[row], np.int64) for row in rows])
    owner = np.repeat(np.arange(len(rows)), sizes)
    stored = sp.csr_matrix(
        (np.ones(len(excluded.indices), bool), excluded.indices, excluded.indptr), shape=excluded.shape
    )
    kept = ~(np.asarray(stored[users[rows][owner], items]).ravel() if len(items) else np.zeros(0, bool))
    width = excluded.shape[1]
    codes = np.unique(owner[kept] * width + items[kept])  # sorted by user, then item; unique
    counts = np.bincount(codes // width, minlength=len(rows))
    for row, left in zip(rows, np.split(codes % width, np.cumsum(counts)[:-1]), strict=True):
        result[row] = left
    return result


def evaluate(model: Recommender, data: TrainData, truth: Truth, protocol: Protocol) -> dict[str, float]:
    return evaluate_protocols(model, data, truth, {protocol.name: protocol})[protocol.name].metrics


@dataclass(frozen=True)
class Evaluation:
    """A model's metrics under one protocol, and each evaluated customer's NDCG@10 (for the
    paired bootstrap against other models on the same customers)."""

    metrics: dict[str, float]
    customers: np.ndarray  # the evaluated customers' ids
    ndcg: np.ndarray  # their NDCG@10, in the same order


def top_items(model: Recommender, users: np.ndarray, protocols: dict[str, Protocol]) -> dict[str, np.ndarray]:
    """Each protocol's `max(KS)` best items for each of `users` (a row each, in their order),
    scoring every user once (only the masks differ). The expensive part of an evaluation:
    a run may rank parts of the users in different processes and stack the rows."""
    ranked: dict[str, list[np.ndarray]] = {name: [] for name in protocols}
    # one BLAS thread wherever it runs: a product's float32 sums can differ with the thread
    # count, and the run's figures must not depend on which process ranked which part
    with threadpool_limits(1, "blas"):
        for part in batches(len(users)):
            scores = model.score(users[part]).astype(np.float32, copy=True)
            for name, protocol in protocols.items():
                masked = scores.copy()
                masked[protocol.excluded[users[part]].toarray()] = -np.inf
                ranked[name].append(top_k(masked, max(KS)))
    return {
        name: np.vstack(rows) if rows else np.zeros((0, max(KS)), np.int64) for name, rows in ranked.items()
    }


def evaluate_protocols(
    model: Recommender,
    data: TrainData,
    truth: Truth,
    protocols: dict[str, Protocol],
    ranked: dict[str, np.ndarray] | None = None,
) -> dict[str, Evaluation]:
    """Metrics under each protocol, from `ranked` (`top_items` of the truth's users, computed
    here when None). Besides the ranking metrics: recall@10 on the items the customer had
    bought before (`repeat_recall`) and on items new to them (`new_recall`), each over the
    customers who bought such items in the window."""
    ranked = top_items(model, truth.user_index, protocols) if ranked is None else ranked
    targets = {name: effective_truth(truth, protocol) for name, protocol in protocols.items()}
    results = {}
    for name in protocols:
        keep = np.array([len(items) > 0 for items in targets[name]], bool)
        rows = ranked[name][keep]
        kept = [t for t, k in zip(targets[name], keep, strict=True) if k]
        metrics = ranking_metrics(rows, kept)
        metrics["coverage_at_10"] = coverage(rows, data.n_items)
        metrics["novelty_at_10"] = novelty(rows, data.popularity)
        metrics["users"] = float(keep.sum())
        # repeat items: what discovery calls not new (bought before, kept or sent back)
        metrics.update(repeat_and_new_recall(rows, kept, data.ever_bought[truth.user_index[keep]]))
        results[name] = Evaluation(
            metrics, data.user_ids[truth.user_index[keep]].astype(str), per_user_ndcg(rows, kept, 10)
        )
    return results


def repeat_and_new_recall(
    ranked: np.ndarray, truth: list[np.ndarray], bought: sp.csr_matrix
) -> dict[str, float]:
    """Recall@10 on the truth items each customer had bought before (`bought`, one row per
    customer) and on those new to them, each over the customers who have such items."""
    rows = np.repeat(np.arange(len(truth)), [len(items) for items in truth]).astype(np.int64)
    items = np.concatenate(truth).astype(np.int64) if truth else np.zeros(0, np.int64)
    before = np.asarray(bought[rows, items]).ravel() > 0 if len(items) else np.zeros(0, bool)
    stride = int(max(items.max(initial=0), ranked.max(initial=0))) + 1
    top = np.arange(len(ranked), dtype=np.int64)[:, None] * stride + ranked[:, :10]
    found = np.isin(rows * stride + items, top)
    result = {}
    for label, part in (("repeat", before), ("new", ~before)):
        size = np.bincount(rows[part], minlength=len(truth))
        got = np.bincount(rows[part & found], minlength=len(truth))
        users = size > 0
        result[f"{label}_recall_at_10"] = (
            float(np.mean(got[users] / size[users])) if users.any() else float("nan")
        )
    return result


def records(model_name: str, protocol: str, metrics: dict[str, float]) -> list[dict[str, object]]:
    """Flat rows {model, protocol, metric, k, value} for tables and charts."""
    rows: list[dict[str, object]] = []
    for key, value in metrics.items():
        if np.isnan(value):  # e.g. recall on repeat items under discovery, where there are none
            continue
        name, separator, k = key.rpartition("_at_")
        if separator:
            rows.append(
                {"model": model_name, "protocol": protocol, "metric": name, "k": int(k), "value": value}
            )
        else:
            rows.append({"model": model_name, "protocol": protocol, "metric": key, "k": None, "value": value})
    return rows
