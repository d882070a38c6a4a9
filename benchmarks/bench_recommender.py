"""Benchmark: recommender quality and speed.

1. Quality on the default demo shop (test = last 28 days) and on the online-retail sample
   (test = last 30 days, both protocols), with every baseline and peer in the same run.
2. Training time on the large demo shop (100,000 customers, 20,000 items, ~1M interactions),
   step by step.
3. Scoring speed on the large shop's model: one customer against 20,000 items in process
   (the hybrid blend, and the whole answer with business rules and reasons), and batch
   throughput.

    uv run python -m benchmarks.bench_recommender [--skip-large]

Results go to benchmarks/results/recommender.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "recommender.json"
SAMPLE = HERE.parent.parent / "shared" / "data" / "online-retail-sample.csv.gz"


def table(outcome: object) -> dict[str, dict[str, float]]:
    from training.recommender.outcome import TrainOutcome

    assert isinstance(outcome, TrainOutcome)
    rows = outcome.comparison[(outcome.comparison["metric"] == "ndcg") & (outcome.comparison["k"] == 10)]
    return {
        protocol: dict(zip(group["model"], group["value"].round(4), strict=True))
        for protocol, group in rows.groupby("protocol")
    }


def demo_quality(work: Path) -> dict[str, object]:
    from features.pipeline import build_features
    from intake.demo.generate import GeneratorSettings, generate_shop
    from intake.demo.writer import write_generated_shop
    from storewise.shop import ShopPaths
    from training.recommender.train import train_recommender

    shop = ShopPaths(work / "demo")
    write_generated_shop(shop, generate_shop(GeneratorSettings()))
    build_features(shop)
    outcome = train_recommender(shop, register=False)
    ndcg = table(outcome)
    primary = ndcg[outcome.primary_protocol]
    lightfm = primary.get("lightfm")  # None when no blend used LightFM: not fitted on the test weeks
    return {
        "ndcg_at_10": ndcg,
        "lightfm_over_popularity": None if lightfm is None else round(lightfm / primary["popularity"], 3),
        "lightfm_minus_cooccurrence": None
        if lightfm is None
        else round(lightfm - primary["cooccurrence"], 4),
        "seconds": outcome.seconds,
    }


def retail_quality(work: Path) -> dict[str, object]:
    from features.pipeline import build_features
    from intake.importers.common import Consent, write_import
    from intake.importers.online_retail import import_online_retail
    from storewise.shop import ShopPaths
    from training.recommender.train import train_recommender

    shop = ShopPaths(work / "retail")
    write_import(shop, import_online_retail(SAMPLE, consent=Consent.PERSONALIZATION))
    build_features(shop)
    outcome = train_recommender(shop, register=False, evaluation={"test_days": 30, "validation_days": 30})
    ndcg = table(outcome)
    peers = (
        "popularity",
        "buy_again",
        "item_knn_bm25_counts",
        "item_knn_bm25_binary",
        "als_counts",
        "als_binary",
        "ease_counts",
        "ease_binary",
    )
    best = {
        protocol: max(peers, key=lambda name: ndcg[protocol][name])
        for protocol in ("discovery", "all_purchases")
    }
    return {
        "ndcg_at_10": ndcg,
        "best_peer": {protocol: [name, ndcg[protocol][name]] for protocol, name in best.items()},
        "hybrid": {protocol: ndcg[protocol]["hybrid"] for protocol in ("discovery", "all_purchases")},
        "users": {
            protocol: float(
                outcome.comparison.query(
                    f"protocol == '{protocol}' and model == 'hybrid' and metric == 'users'"
                )["value"].iloc[0]
            )
            for protocol in ("discovery", "all_purchases")
        },
        "seconds": outcome.seconds,
    }


def large(work: Path) -> dict[str, object]:
    from features.pipeline import build_features
    from inference.recommender.pyfunc import batch_top_k, load_bundle
    from intake.demo.generate import GeneratorSettings, generate_shop
    from intake.demo.writer import write_generated_shop
    from storewise.shop import ShopPaths
    from training.recommender.train import train_recommender

    shop = ShopPaths(work / "large")
    write_generated_shop(shop, generate_shop(GeneratorSettings(customers=100_000, products=20_000)))
    build_features(shop)
    outcome = train_recommender(shop, register=False)
    assert outcome.bundle is not None
    recommendations = load_bundle(outcome.bundle)
    model = recommendations.model
    blend = model.blends["business_rules"]
    users = np.random.default_rng(0).choice(len(model.user_ids), 1000, replace=False)
    blend_ms, answer_ms = [], []
    for user in users:
        started = time.perf_counter()
        model.blend_scores(np.array([user]), blend)
        blend_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        recommendations.recommend(str(model.user_ids[user]), 10)
        answer_ms.append((time.perf_counter() - started) * 1000)
    lightfm_ms = []
    for user in users[:300]:
        started = time.perf_counter()
        scores = model.user_embedding[user] @ model.item_embedding.T + model.item_bias
        np.argpartition(-scores, 10)[:10]
        lightfm_ms.append((time.perf_counter() - started) * 1000)
    ids = [str(value) for value in model.user_ids[:5000]]
    started = time.perf_counter()
    batch_top_k(recommendations, ids, [10] * len(ids))
    throughput = len(ids) / (time.perf_counter() - started)
    return {
        "items": int(model.n_items),
        "users": len(model.user_ids),
        "training_seconds": outcome.seconds,
        "fit_and_evaluate_seconds": round(
            outcome.seconds["test comparison"] + outcome.seconds["final fit"], 2
        ),
        "ndcg_at_10": table(outcome)[outcome.primary_protocol],
        "median_ms_lightfm_top10": round(statistics.median(lightfm_ms), 3),
        "median_ms_hybrid_blend": round(statistics.median(blend_ms), 3),
        "p99_ms_hybrid_blend": round(float(np.percentile(blend_ms, 99)), 3),
        "median_ms_full_answer": round(statistics.median(answer_ms), 3),
        "batch_customers_per_second": round(throughput),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {
        "command": "uv run python -m benchmarks.bench_recommender",
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        results["demo"] = demo_quality(work)
        print("demo", json.dumps(results["demo"])[:400], flush=True)
        results["online_retail_sample"] = retail_quality(work)
        print("retail", json.dumps(results["online_retail_sample"])[:600], flush=True)
        if not args.skip_large:
            results["large"] = large(work)
            print("large", json.dumps(results["large"]), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
