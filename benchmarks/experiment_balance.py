"""Experiment: would a per-customer balance of repeat and explore help the blend (issue 14)?

Each customer's repeat ratio (the share of the items in their baskets after the first that
they had bought before, shrunk towards the shop's ratio with a prior of 10 items) scales the
blend's repeat components (buy-again, repurchase timing, TIFU-KNN) by (ratio / shop
ratio) ** beta and every other component by ((1 - ratio) / (1 - shop ratio)) ** beta, so a
customer who mostly buys new things gets more of the explore side. beta = 0 is the blend
as trained. For each beta the blend is tuned exactly as training tunes it, on the older
validation folds, and judged on the latest fold, with the paired bootstrap 90% interval
over its customers against beta = 0.

    uv run python -m benchmarks.experiment_balance --shop-dir DIR [--protocol all_purchases] [--out FILE]

The shop must have its features built (`storewise features build`). The windows are the
online-retail check's (`--test-days 30 --validation-days 30`, four folds). Results:
benchmarks/results/balance.json (the online-retail sample's; `--out` for another shop).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "balance.json"
REPEAT = frozenset({"buy_again", "due", "tifu"})
PRIOR_ITEMS = 10.0
BETAS = (0.0, 0.5, 1.0, 2.0)


def repeat_ratio(data: object) -> tuple[np.ndarray, float]:
    """Per customer of `data` (a TrainData), the shrunk repeat ratio, and the shop's."""
    from training.recommender.data import TrainData
    from training.recommender.relations import first_purchases

    assert isinstance(data, TrainData)
    later = np.r_[False, data.basket_user[1:] == data.basket_user[:-1]]  # not a first basket
    users = data.basket_user[later]
    total = np.bincount(users, weights=np.diff(data.baskets.indptr)[later], minlength=data.n_users)
    new = np.bincount(users, weights=np.diff(first_purchases(data).indptr)[later], minlength=data.n_users)
    repeats = total - new
    shop = float(repeats.sum() / max(total.sum(), 1.0))
    return (repeats + PRIOR_ITEMS * shop) / (total + PRIOR_ITEMS), shop


def main() -> None:
    from storewise.shop import ShopPaths
    from training.recommender.blend import FoldScores, Validation, tune
    from training.recommender.data import split_cutoffs
    from training.recommender.trainer import Trainer
    from training.recommender.uncertainty import Bootstrap
    from training.recommender.validation import folds_before, validate

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shop-dir", type=Path, required=True)
    parser.add_argument("--protocol", default="all_purchases", choices=["all_purchases", "business_rules"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    trainer = Trainer(ShopPaths(args.shop_dir), evaluation={"test_days": 30, "validation_days": 30})
    windows = trainer.settings.evaluation
    test_cutoff, _ = split_cutoffs(trainer.orders, windows.test_days, windows.validation_days)["test"]
    folds = folds_before(trainer, test_cutoff)
    _, scores, components = validate(trainer, folds, False, lambda _: None)
    per_fold = [fold_scores[args.protocol] for fold_scores in scores]
    ratios = []
    for fold, fold_scores in zip(folds, per_fold, strict=True):
        ratio, shop = repeat_ratio(fold.data)
        row_of = {customer: i for i, customer in enumerate(fold.data.user_ids.astype(str))}
        ratios.append((ratio[[row_of[customer] for customer in fold_scores.customers]], shop))

    def balanced(fold_scores: FoldScores, ratio: np.ndarray, shop: float, beta: float) -> FoldScores:
        repeat = ((ratio / shop) ** beta).astype(np.float32)[:, None]
        explore = (((1 - ratio) / (1 - shop)) ** beta).astype(np.float32)[:, None]
        values = {name: v * (repeat if name in REPEAT else explore) for name, v in fold_scores.values.items()}
        return replace(fold_scores, values=values)

    def validation(folds_: list[FoldScores]) -> Validation:
        clusters = np.concatenate([fold.customers for fold in folds_])
        return Validation(
            folds_,
            Bootstrap(
                clusters,
                samples=windows.bootstrap_samples,
                confidence=windows.confidence,
                seed=windows.bootstrap_seed,
            ),
        )

    blend = trainer.settings.blend
    latest_values: dict[float, np.ndarray] = {}
    rows = []
    for beta in BETAS:
        shaped = [balanced(f, ratio, shop, beta) for f, (ratio, shop) in zip(per_fold, ratios, strict=True)]
        tuned = tune(validation(shaped[1:]), components, blend.grid, blend.passes, blend.shrinkage)
        latest_values[beta] = validation(shaped[:1]).ndcg(tuned.weights)
        rows.append(
            {
                "beta": beta,
                "weights": tuned.weights,
                "tuning_ndcg_at_10": round(tuned.value, 4),
                "latest_fold_ndcg_at_10": round(float(latest_values[beta].mean()), 4),
            }
        )
    judge = validation(per_fold[:1]).bootstrap
    for row in rows[1:]:
        interval = judge.interval(latest_values[row["beta"]] - latest_values[0.0])  # type: ignore[index]
        row["minus_beta_0"] = {"mean": interval.mean, "low": interval.low, "high": interval.high}
    result = {
        "command": f"uv run python -m benchmarks.experiment_balance --shop-dir {args.shop_dir} --protocol {args.protocol}",
        "protocol": args.protocol,
        "folds": [str(fold.window[0].date()) for fold in folds],
        "latest_fold_customers": len(per_fold[0].customers),
        "shop_repeat_ratio": [round(shop, 3) for _, shop in ratios],
        "runs": rows,
    }
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
