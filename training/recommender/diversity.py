"""What a diversity cap costs offline: NDCG@k of the same rankings with at most `cap`
items per category, against the uncapped lists, with a paired bootstrap over customers.

The service's `max_per_category` (inference/recommender/answers.py) walks down a
customer's ranking and skips an item whose category already has `cap` items; here the
same walk on each customer's ranked candidates (wide enough that the cap can fill k),
then NDCG@k against what the customer bought in the held-out weeks. Each setting's cost
is the mean difference from the uncapped lists over the same customers, with its 95%
interval from resampling customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.recommender.metrics import per_user_ndcg


def capped(ranked: np.ndarray, categories: np.ndarray, cap: int | None, k: int) -> np.ndarray:
    """The first k items of each row with at most `cap` per category (-1 pads a row the
    cap leaves short); `ranked` holds item positions, best first."""
    if cap is None:
        return ranked[:, :k]
    result = np.full((len(ranked), k), -1, np.int64)
    for row, items in enumerate(ranked):
        counts: dict[object, int] = {}
        filled = 0
        for item in items:
            category = categories[item]
            if counts.get(category, 0) < cap:
                result[row, filled] = item
                counts[category] = counts.get(category, 0) + 1
                filled += 1
                if filled == k:
                    break
    return result


def ndcg(lists: np.ndarray, truth: list[np.ndarray], k: int) -> np.ndarray:
    """Binary-relevance NDCG@k per customer (an empty truth scores 0): the evaluation's own."""
    return per_user_ndcg(lists, truth, k)


@dataclass(frozen=True)
class DiversityCost:
    cap: int | None
    ndcg: float
    difference: float  # against no cap, same customers
    low: float  # 95% paired bootstrap interval of the difference
    high: float
    categories_per_list: float


def diversity_costs(
    ranked: np.ndarray,
    truth: list[np.ndarray],
    categories: np.ndarray,
    caps: tuple[int | None, ...] = (None, 3, 2, 1),
    *,
    k: int = 10,
    resamples: int = 1000,
    seed: int = 0,
) -> list[DiversityCost]:
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(ranked), (resamples, len(ranked)))
    baseline = ndcg(capped(ranked, categories, None, k), truth, k)
    costs = []
    for cap in caps:
        lists = capped(ranked, categories, cap, k)
        scores = ndcg(lists, truth, k)
        difference = scores - baseline
        boot = difference[samples].mean(axis=1)
        distinct = np.mean([len({categories[item] for item in row if item >= 0}) for row in lists])
        costs.append(
            DiversityCost(
                cap,
                float(scores.mean()),
                float(difference.mean()),
                float(np.quantile(boot, 0.025)),
                float(np.quantile(boot, 0.975)),
                float(distinct),
            )
        )
    return costs
