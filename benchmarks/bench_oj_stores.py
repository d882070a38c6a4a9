"""Benchmark: how much the Dominick's forecast check depends on which stores it sees.

The shared sample holds 22 of the chain's 83 stores; the check kept outside this repo runs
on the others. Here the sample is split into halves of 11 stores (three random splits,
numpy seeds 1, 2, 3 over the sorted store numbers), and each half, and all 22, goes through
the CLI as a shop would run it: `data import --format weekly-sales`, `features build`,
`train pricing --forecast-days 140` (MLflow a SQLite store per shop). Reported per shop:
the forecast's WAPE for the model, the model without price, the 8-week mean and the last
week, and the model's ratio to the model without price; the model's WAPE and that ratio
with their 90% bootstrap intervals over series.

    uv run python -m benchmarks.bench_oj_stores [--work DIR]

Results go to benchmarks/results/oj_store_halves.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_demo_seeds import storewise

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "oj_store_halves.json"
SAMPLE = HERE.parent.parent / "shared" / "data" / "dominicks-oj-sample.csv.gz"
REPORTED = ("model", "no_price", "mean_8_periods", "last_period", "model_over_no_price")


def store_sets(stores: list[int]) -> dict[str, list[int]]:
    """All stores, and each split's two halves."""
    sets = {"all": stores}
    for seed in (1, 2, 3):
        shuffled = [int(store) for store in np.random.default_rng(seed).permutation(stores)]
        half = len(shuffled) // 2
        sets[f"split {seed} a"], sets[f"split {seed} b"] = sorted(shuffled[:half]), sorted(shuffled[half:])
    return sets


def latest_metrics(store: str) -> dict[str, float]:
    """The metrics of the store's newest run (the pricing run: the only one)."""
    from mlflow import MlflowClient

    client = MlflowClient(store)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)
    return dict(runs[0].data.metrics)


def measure(lines: pd.DataFrame, stores: list[int], work: Path) -> dict[str, float | list[float]]:
    export, shop, database = work / "export.csv.gz", work / "shop", work / "mlflow.db"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    lines[lines["store"].isin(stores)].to_csv(export, index=False)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{database}"}
    storewise(["data", "import", str(export), "--format", "weekly-sales", "--shop-dir", str(shop)], env)
    storewise(["features", "build", "--shop-dir", str(shop)], env)
    storewise(["train", "pricing", "--shop-dir", str(shop), "--forecast-days", "140"], env)
    metrics = latest_metrics(env["MLFLOW_TRACKING_URI"])
    figures: dict[str, float | list[float]] = {
        name: round(metrics[f"forecast.wape_{name}"], 4) for name in REPORTED
    }
    for name in ("model", "model_over_no_price"):  # 90% bootstrap over series
        figures[f"{name}_interval"] = [
            round(metrics[f"forecast.wape_{name}_{end}"], 4) for end in ("low", "high")
        ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="storewise-oj-stores-"))
    lines = pd.read_csv(SAMPLE)
    results = {}
    for name, stores in store_sets(sorted(int(store) for store in lines["store"].unique())).items():
        results[name] = {"stores": stores, **measure(lines, stores, work / name.replace(" ", "_"))}
        print(name, {key: value for key, value in results[name].items() if key != "stores"}, flush=True)
    RESULTS.write_text(
        json.dumps({"command": "uv run python -m benchmarks.bench_oj_stores", "shops": results}, indent=1)
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
