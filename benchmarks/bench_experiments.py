"""Benchmark: the online-experiment machinery proven on the default demo shop's truth.

1. Recommender experiments (benchmarks/experiment_proof.py): the demo shop's customers
   answer champion and challenger lists from the generator's true tastes, conversion and
   prices; each simulated experiment is read weekly by the experiment report's decision
   (config/experiments.yaml: 90% confidence, 80% power, 5% smallest effect, revenue per
   customer) until it decides or reaches `--max-days` (182), half the customers on the challenger. Per scenario, over `--runs` runs:
   how often it promotes, stops or keeps running, the right and wrong picks, and for the
   A/A runs (champion against itself) how often a difference is declared. Wilson 95%
   intervals over the runs.
2. Switchback price tests on the shop's true demand (`intake/demo/dynamics.py`): how often
   the estimator's 90% interval covers each tested item's true elasticity.
3. Diversity: the hybrid fitted as `train recommender` does, on the test weeks; NDCG@10 of
   its lists with `max_per_category` 3, 2, 1 against none, a paired bootstrap over customers.

    uv run python -m benchmarks.bench_experiments [--runs 300]

Results go to benchmarks/results/experiments.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "experiments.json"


def experiment_scenarios(shop: Any, generated: Any, runs: int, share: float, max_days: int) -> dict[str, Any]:
    from benchmarks.experiment_proof import experiment_rates
    from storewise.settings import load_experiment_settings
    from training.online_simulation import load_truth, popularity_lists, taste_lists

    settings = load_experiment_settings()
    truth = load_truth(shop, generated)
    taste, popular = taste_lists(truth, 10), popularity_lists(truth, 10)
    blurred = taste_lists(truth, 10, noise=1.0, seed=1)
    slightly = taste_lists(truth, 10, noise=0.5, seed=1)  # about the 5% smallest effect worth having
    scenarios = {
        "A/A (taste against itself)": (taste, taste),
        "better, large (popularity -> taste)": (popular, taste),
        "better, moderate (blurred taste -> taste)": (blurred, taste),
        "worse, moderate (taste -> blurred taste)": (taste, blurred),
        "better, small (slightly blurred taste -> taste)": (slightly, taste),
    }
    results: dict[str, Any] = {"settings": settings.model_dump(), "share": share, "max_days": max_days}
    for seed, (name, (champion, challenger)) in enumerate(scenarios.items()):
        started = time.perf_counter()
        rates = experiment_rates(
            truth,
            champion,
            challenger,
            settings,
            runs=runs,
            share=share,
            max_days=max_days,
            seed=1000 * (seed + 1),
            progress=True,
        )
        row = {
            "runs": rates.runs,
            "true_effect": round(rates.true_effect, 4),
            "actions": rates.actions,
            "correct": [round(value, 4) for value in rates.rate(rates.correct)],
            "wrong": [round(value, 4) for value in rates.rate(rates.wrong)],
            "declared_difference": [round(value, 4) for value in rates.rate(rates.declared)],
            "median_days": rates.median_days,
            "seconds": round(time.perf_counter() - started, 1),
        }
        results[name] = row
        print(name, json.dumps(row), flush=True)
    return results


def switchback(shop: Any, items: int, runs: int) -> dict[str, Any]:
    import pandas as pd

    from benchmarks.experiment_proof import switchback_coverage
    from storewise.settings import load_experiment_settings

    settings = load_experiment_settings()
    truth = pd.read_parquet(shop.ground_truth / "items.parquet")
    busiest = truth.sort_values("view_share", ascending=False)["item_id"].head(items).tolist()
    results: dict[str, Any] = {"items": busiest, "step": settings.price_step}
    for days in (settings.price_days, 2 * settings.price_days):
        coverage = switchback_coverage(
            shop, busiest, step=settings.price_step, days=days, runs=runs, confidence=0.90, seed=days
        )
        low, high = wilson(coverage.covered, coverage.runs)
        row = {
            "tests": coverage.runs,
            "covered_90": [round(coverage.covered / max(coverage.runs, 1), 4), round(low, 4), round(high, 4)],
            "median_interval_width": round(coverage.median_width, 3),
            "median_abs_error": round(coverage.median_error, 3),
            "true_elasticities": {item: round(value, 3) for item, value in coverage.truth.items()},
        }
        results[f"{days}_days"] = row
        print("switchback", days, json.dumps(row), flush=True)
    return results


def wilson(successes: int, trials: int) -> tuple[float, float]:
    from benchmarks.experiment_proof import wilson as interval

    return interval(successes, trials)


def diversity(shop: Any) -> dict[str, Any]:
    """The hybrid as `train recommender` fits it (validation folds, epochs, blends), then
    refitted before the test weeks; its ranked lists under the primary protocol, capped."""
    import pandas as pd

    from inference.recommender.topk import top_k
    from storewise import columns as c
    from training.recommender.data import build_truth, split_cutoffs
    from training.recommender.diversity import diversity_costs
    from training.recommender.evaluate import batches, effective_truth
    from training.recommender.hybrid import BlendView
    from training.recommender.trainer import Trainer
    from training.recommender.validation import folds_before, shared_masks, tune_all, validate

    trainer = Trainer(shop)
    windows = trainer.settings.evaluation
    test_cutoff, end = split_cutoffs(trainer.orders, windows.test_days, windows.validation_days)["test"]
    folds = folds_before(trainer, test_cutoff)
    choice, ranks, components = validate(trainer, folds, False, lambda _step: None)
    tuned = tune_all(trainer, ranks, components, shared_masks(folds))
    blends = {protocol: blend.weights for protocol, blend in tuned.items()}
    used = {name for weights in blends.values() for name in weights}
    data = trainer.data_at(test_cutoff, listed_only=True)  # as `train recommender` tests
    truth = build_truth(trainer.orders, trainer.tables[c.CUSTOMERS], data, (test_cutoff, end))
    protocol = trainer.protocols(data)[windows.primary_protocol]
    lightfm = trainer.lightfm(choice.epochs, choice.overrides).fit(data)
    hybrid = trainer.hybrid(data, lightfm, components=used)
    hybrid.blends = blends
    view = BlendView(hybrid, windows.primary_protocol)
    targets = effective_truth(truth, protocol)
    keep = np.array([len(items) > 0 for items in targets], bool)
    ranked = []
    for part in batches(len(truth.user_index)):
        users = truth.user_index[part]
        scores = view.score(users).astype(np.float32, copy=True)
        scores[protocol.excluded[users].toarray()] = -np.inf
        ranked.append(top_k(scores, 60))
    rows = np.vstack(ranked)[keep]
    categories = (
        pd.read_parquet(shop.table(c.PRODUCTS))
        .set_index(c.ITEM_ID)[c.CATEGORY]
        .reindex(data.item_ids)
        .fillna("")
        .to_numpy()
    )
    costs = diversity_costs(
        rows, [t for t, k in zip(targets, keep, strict=True) if k], categories, (None, 3, 2, 1)
    )
    result = {
        "protocol": windows.primary_protocol,
        "customers": int(keep.sum()),
        "categories": len(set(categories)),
        "costs": [
            {
                key: round(value, 4) if isinstance(value, float) else value
                for key, value in asdict(cost).items()
            }
            for cost in costs
        ],
    }
    print("diversity", json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="simulated experiments per scenario")
    parser.add_argument("--share", type=float, default=0.5, help="the challenger's share of customers")
    parser.add_argument("--max-days", type=int, default=182)
    parser.add_argument("--switchback-runs", type=int, default=20)
    parser.add_argument("--switchback-items", type=int, default=8)
    parser.add_argument("--skip-diversity", action="store_true")
    args = parser.parse_args()

    from features.pipeline import build_features
    from intake.demo.generate import GeneratorSettings, generate_shop
    from intake.demo.writer import write_generated_shop
    from storewise.shop import ShopPaths

    results: dict[str, Any] = {
        "command": f"uv run python -m benchmarks.bench_experiments --runs {args.runs}",
        "date": time.strftime("%Y-%m-%d"),
    }
    generated = GeneratorSettings()
    with tempfile.TemporaryDirectory() as directory:
        shop = ShopPaths(Path(directory) / "demo")
        write_generated_shop(shop, generate_shop(generated))
        results["experiments"] = experiment_scenarios(shop, generated, args.runs, args.share, args.max_days)
        results["switchback"] = switchback(shop, args.switchback_items, args.switchback_runs)
        if not args.skip_diversity:
            build_features(shop)
            results["diversity"] = diversity(shop)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=float), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
