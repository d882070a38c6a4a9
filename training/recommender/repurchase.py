"""Repurchase timing: how likely a customer is to buy an item they bought before within the
next window, learned from the shop's own history (the idea behind Amazon's and Target's
buy-again models: an item is due when the customer's own cycle says so).

For every (customer, item) the customer bought, the features say how often and how lately
they bought it, their own cycle for it (mean days between their purchases of it) and how far
into that cycle they are, the same against the item's typical cycle among all customers,
and how much of a repeat buyer the customer and the item are. Gradient-boosted trees
(scikit-learn) learn the chance of a purchase in the next `horizon` days.

Everything is learned before the cutoff: the model is fitted on the features as they were
`horizon` days before it, with what was bought in those last days as the answer, and then
scores the features at the cutoff. Validation folds, test weeks and the final fit each do
exactly this at their own cutoff, so no fold sees its own answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from storewise.settings import RepurchaseSettings
from training.recommender.data import TrainData

FEATURES = (
    "times_bought",
    "days_since_last",
    "days_since_first",
    "own_cycle_days",
    "own_cycle_progress",
    "item_cycle_progress",
    "share_of_baskets",
    "baskets",
    "days_since_last_basket",
    "customer_repeat_share",
    "item_repeat_share",
    "item_buyers",
)


@dataclass(frozen=True)
class Pairs:
    """(customer, item) pairs bought before a moment, with their features."""

    users: np.ndarray
    items: np.ndarray
    features: np.ndarray  # pairs x FEATURES


def pair_features(data: TrainData, shift_days: float) -> Pairs:
    """Features of every pair bought in the baskets older than `shift_days`, as they were
    `shift_days` before the cutoff."""
    use = data.basket_age >= shift_days
    baskets = data.baskets[use].tocoo()
    basket_user, basket_age = data.basket_user[use], data.basket_age[use] - shift_days
    if not baskets.nnz:
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, len(FEATURES))))
    lines = pd.DataFrame(
        {"user": basket_user[baskets.row], "item": baskets.col, "age": basket_age[baskets.row]}
    )
    pairs = lines.groupby(["user", "item"], sort=True)["age"].agg(["size", "min", "max"])
    users = pairs.index.get_level_values("user").to_numpy()
    items = pairs.index.get_level_values("item").to_numpy()
    times, last, first = (pairs[name].to_numpy(np.float64) for name in ("size", "min", "max"))
    own_cycle = np.where(times > 1, (first - last) / np.maximum(times - 1, 1), np.nan)

    per_user = pd.DataFrame({"user": basket_user, "age": basket_age}).groupby("user")["age"]
    n_baskets = per_user.size().reindex(np.arange(data.n_users), fill_value=0).to_numpy(np.float64)
    last_basket = per_user.min().reindex(np.arange(data.n_users), fill_value=np.nan).to_numpy()
    repeats = np.bincount(users, weights=times - 1, minlength=data.n_users)
    lines_per_user = np.bincount(users, weights=times, minlength=data.n_users)
    customer_repeat = repeats / np.maximum(lines_per_user, 1)

    buyers = np.bincount(items, minlength=data.n_items).astype(np.float64)
    repeat_buyers = np.bincount(items, weights=(times > 1).astype(np.float64), minlength=data.n_items)
    item_cycle = pd.Series(own_cycle).groupby(items).median().reindex(np.arange(data.n_items)).to_numpy()
    features = np.column_stack(
        [
            np.log1p(times),
            np.log1p(last),
            np.log1p(first),
            np.log1p(own_cycle),
            np.log((last + 1) / (own_cycle + 1)),
            np.log((last + 1) / (item_cycle[items] + 1)),
            times / np.maximum(n_baskets[users], 1),
            np.log1p(n_baskets[users]),
            np.log1p(last_basket[users]),
            customer_repeat[users],
            repeat_buyers[items] / np.maximum(buyers[items], 1),
            np.log1p(buyers[items]),
        ]
    )
    return Pairs(users, items, features)


def bought_within(data: TrainData, days: float) -> sp.csr_matrix:
    """Users x items: 1 where the customer bought the item in the last `days` before the cutoff."""
    recent = data.basket_age < days
    spread = sp.csr_matrix(
        (np.ones(int(recent.sum()), np.float32), (data.basket_user[recent], np.flatnonzero(recent))),
        shape=(data.n_users, data.baskets.shape[0]),
    )
    return sp.csr_matrix((spread @ data.baskets) > 0, dtype=np.float32)


def repurchase_scores(data: TrainData, horizon_days: float, settings: RepurchaseSettings) -> sp.csr_matrix:
    """Users x items: the chance of buying each item bought before again within
    `horizon_days` after the cutoff (0 for items never bought). Falls back on the decayed
    purchase counts (buy again) when the shop's history has nothing to learn from."""
    training = pair_features(data, horizon_days)
    answers = bought_within(data, horizon_days)
    labels = np.asarray(answers[training.users, training.items]).ravel() > 0 if len(training.users) else None
    if labels is None or labels.all() or not labels.any():
        return data.repeat_score.astype(np.float32)
    from sklearn.ensemble import HistGradientBoostingClassifier

    rows = np.arange(len(labels))
    if len(rows) > settings.max_pairs:
        rows = np.sort(np.random.default_rng(settings.seed).choice(rows, settings.max_pairs, replace=False))
    model = HistGradientBoostingClassifier(
        max_iter=settings.iterations,
        max_leaf_nodes=settings.leaves,
        learning_rate=settings.learning_rate,
        early_stopping=False,
        random_state=settings.seed,
    )
    model.fit(training.features[rows], labels[rows])
    now = pair_features(data, 0.0)
    chance = model.predict_proba(now.features)[:, 1] if len(now.users) else np.zeros(0)
    return sp.csr_matrix(
        (np.maximum(chance, 1e-9).astype(np.float32), (now.users, now.items)),
        shape=(data.n_users, data.n_items),
    )
