"""Benchmark: pricing quality (demo shop, real sample) and speed (large demo shop).

1. The default demo shop: elasticity MAE and 90% coverage against the truth, simulated
   profit of the fixed list price, the optimizer and the oracle over seeds.
2. The online-retail sample: forecast of the last 30 days (WAPE, bias) against baselines.
3. The large demo shop (20,000 items): fitting the elasticities, pricing all items once,
   and pricing one item in process (median of 1,000).

    uv run python -m benchmarks.bench_pricing

Results go to benchmarks/results/pricing.json.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from storewise.shop import ShopPaths

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "pricing.json"
SAMPLE = HERE.parent.parent / "shared" / "data" / "online-retail-sample.csv.gz"


def _trained_metrics(
    shop: Path, write_shop: Callable[[ShopPaths], None]
) -> tuple[dict[str, float], list[dict[str, object]] | None]:
    """Write a shop, build its features and train pricing on it (nothing registered):
    its metrics and, when it has a simulator, the simulation's rows."""
    from features.pipeline import build_features
    from training.pricing.train import train_pricing

    paths = ShopPaths(shop)
    write_shop(paths)
    build_features(paths)
    outcome = train_pricing(paths, register=False)
    metrics = {key: round(value, 4) for key, value in outcome.metrics.items()}
    simulation = outcome.simulation.to_dict("records") if outcome.simulation is not None else None
    return metrics, simulation


def _demo(paths: ShopPaths) -> None:
    from intake.demo.generate import GeneratorSettings, generate_shop
    from intake.demo.writer import write_generated_shop

    write_generated_shop(paths, generate_shop(GeneratorSettings()))


def _retail(paths: ShopPaths) -> None:
    from intake.importers.common import Consent, write_import
    from intake.importers.online_retail import import_online_retail

    write_import(paths, import_online_retail(SAMPLE, consent=Consent.PERSONALIZATION))


def _large_shop_speed(work: Path) -> dict[str, object]:
    """Fit the large shop's elasticities, price every item once, and one item 1,000 times."""
    import pandas as pd

    from features.pipeline import Outputs, build_features, load_output
    from inference.pricing.policy import decide_arrays
    from intake.demo.generate import GeneratorSettings, generate_shop
    from intake.demo.writer import write_generated_shop
    from storewise import columns as c
    from storewise.settings import load_pricing_settings
    from training.pricing.build import build_pricing_model
    from training.pricing.elasticity import estimate_elasticities

    settings = load_pricing_settings()
    large = ShopPaths(work / "large")
    write_generated_shop(large, generate_shop(GeneratorSettings(customers=100_000, products=20_000)))
    build_features(large)
    demand = load_output(large, Outputs.DEMAND)
    products = pd.read_parquet(large.table(c.PRODUCTS))
    started = time.perf_counter()
    elasticities, exposure = estimate_elasticities(demand, products, settings.elasticity)
    fit_seconds = time.perf_counter() - started
    model = build_pricing_model(elasticities, demand, products, settings, "RM", exposure)
    everything = np.arange(len(model.items))
    started = time.perf_counter()
    decide_arrays(model.states(everything), settings, "RM")
    all_seconds = time.perf_counter() - started
    one = []
    for position in np.random.default_rng(0).choice(everything, 1000):
        started = time.perf_counter()
        decide_arrays(model.states(np.array([position])), settings, "RM")
        one.append((time.perf_counter() - started) * 1000)
    return {
        "items": len(model.items),
        "items_with_own_evidence": int((elasticities["evidence"] == "item").sum()),
        "fit_seconds": round(fit_seconds, 2),
        "price_all_items_seconds": round(all_seconds, 3),
        "price_one_item_median_ms": round(statistics.median(one), 4),
        "price_one_item_p99_ms": round(float(np.percentile(one, 99)), 4),
    }


def main() -> None:
    results: dict[str, object] = {
        "command": "uv run python -m benchmarks.bench_pricing",
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        results["demo"], results["demo_simulation"] = _trained_metrics(work / "demo", _demo)
        print("demo", json.dumps(results["demo"])[:600], flush=True)
        results["online_retail_sample"], _ = _trained_metrics(work / "retail", _retail)
        print("retail", json.dumps(results["online_retail_sample"])[:600], flush=True)
        results["large"] = _large_shop_speed(work)
        print("large", json.dumps(results["large"]), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=float), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
