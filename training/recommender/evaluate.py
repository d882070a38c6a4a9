"""Evaluation of any model on a split, under a protocol, in flat records.

Protocols decide what a customer's earlier purchases mean:
- `discovery`: items bought before the cutoff are removed from the candidates and from
  the truth (what is new to the customer);
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

from training.recommender.data import TrainData, Truth
from training.recommender.metrics import KS, coverage, novelty, ranking_metrics, top_k
from training.recommender.models import Recommender

PROTOCOLS = ("discovery", "all_purchases", "business_rules")
BATCH = 512


@dataclass(frozen=True)
class Protocol:
    name: str
    excluded: sp.csr_matrix  # users x items: True where the item may not be recommended


def make_protocol(name: str, data: TrainData, one_time_items: np.ndarray) -> Protocol:
    bought = data.purchases > 0
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


def effective_truth(truth: Truth, protocol: Protocol) -> list[np.ndarray]:
    result = []
    indptr, indices = protocol.excluded.indptr, protocol.excluded.indices
    for user, items in zip(truth.user_index, truth.items, strict=True):
        excluded = indices[indptr[user] : indptr[user + 1]]  # a csr row without scipy's per-call cost
        result.append(np.setdiff1d(items, excluded) if len(excluded) else items)
    return result


def evaluate(model: Recommender, data: TrainData, truth: Truth, protocol: Protocol) -> dict[str, float]:
    return evaluate_protocols(model, data, truth, {protocol.name: protocol})[protocol.name]


def evaluate_protocols(
    model: Recommender, data: TrainData, truth: Truth, protocols: dict[str, Protocol]
) -> dict[str, dict[str, float]]:
    """Metrics under each protocol, scoring every user once (only the masks differ)."""
    targets = {name: effective_truth(truth, protocol) for name, protocol in protocols.items()}
    ranked: dict[str, list[np.ndarray]] = {name: [] for name in protocols}
    for part in batches(len(truth.user_index)):
        users = truth.user_index[part]
        scores = model.score(users).astype(np.float32, copy=True)
        for name, protocol in protocols.items():
            masked = scores.copy()
            masked[protocol.excluded[users].toarray()] = -np.inf
            ranked[name].append(top_k(masked, max(KS)))
    results = {}
    for name in protocols:
        keep = np.array([len(items) > 0 for items in targets[name]], bool)
        rows = np.vstack(ranked[name])[keep] if ranked[name] else np.zeros((0, max(KS)), int)
        metrics = ranking_metrics(rows, [t for t, k in zip(targets[name], keep, strict=True) if k])
        metrics["coverage_at_10"] = coverage(rows, data.n_items)
        metrics["novelty_at_10"] = novelty(rows, data.popularity)
        metrics["users"] = float(keep.sum())
        results[name] = metrics
    return results


def records(model_name: str, protocol: str, metrics: dict[str, float]) -> list[dict[str, object]]:
    """Flat rows {model, protocol, metric, k, value} for tables and charts."""
    rows: list[dict[str, object]] = []
    for key, value in metrics.items():
        name, separator, k = key.rpartition("_at_")
        if separator:
            rows.append(
                {"model": model_name, "protocol": protocol, "metric": name, "k": int(k), "value": value}
            )
        else:
            rows.append({"model": model_name, "protocol": protocol, "metric": key, "k": None, "value": value})
    return rows
