"""`storewise train pricing` and `storewise simulate`.

Fits the elasticities on the shop's daily demand signals, builds the pricing model, and
judges it: on the demo shop against the generator's true elasticities (MAE and interval
coverage over items with enough price variation) and in the simulator against the fixed
list price and the oracle, over several seeds; on an imported shop by forecasting its
last weeks at the prices charged against two baselines. Logs to the MLflow experiment
`storewise-pricing` and registers the model under the same name. The gate score is the
optimizer's share of the oracle's profit (demo) or 1 - WAPE (imported shops).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from features.pipeline import Outputs, fresh_manifest, load_output
from inference.pricing.model import PricingModel
from inference.registry import PRICING, load_champion
from intake.tables import read_table
from storewise import columns as c
from storewise.columns import ELASTICITY, EVIDENCE, HIGH, LOW
from storewise.config import CONFIG_DIR, flatten
from storewise.errors import DataError
from storewise.settings import PricingSettings, load_pricing_settings
from storewise.shop import ShopPaths
from training.pricing.build import build_pricing_model
from training.pricing.elasticity import estimate_elasticities
from training.pricing.forecast import forecast_check
from training.pricing.simulate import SimulationResult, simulate
from training.tracking import ensure_experiment, environment

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", c.ITEM_ID)]),
    outputs=Schema(
        [
            ColSpec("string", c.ITEM_ID),
            ColSpec("double", "price"),
            ColSpec("double", "previous_price"),
            ColSpec("string", "reason"),
        ]
    ),
)


@dataclass
class PricingOutcome:
    model: PricingModel
    metrics: dict[str, float]
    elasticities: pd.DataFrame
    simulation: pd.DataFrame | None = None
    simulation_daily: pd.DataFrame | None = None
    run_id: str | None = None
    version: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def truth_metrics(elasticities: pd.DataFrame, shop: ShopPaths, settings: PricingSettings) -> dict[str, float]:
    truth = pd.read_parquet(shop.ground_truth / "items.parquet").set_index(c.ITEM_ID)["elasticity"]
    table = elasticities.assign(truth=elasticities[c.ITEM_ID].map(truth))
    enough = table[
        (table["units"] >= settings.evaluation.enough_units)
        & (table["log_price_sd"] >= settings.evaluation.enough_log_price_sd)
        & (table[EVIDENCE] == "item")
    ]
    covered = (enough["truth"] >= enough[LOW]) & (enough["truth"] <= enough[HIGH])
    return {
        "elasticity_items_enough_variation": float(len(enough)),
        "elasticity_mae": float((enough[ELASTICITY] - enough["truth"]).abs().mean()),
        "elasticity_mae_raw": float((enough["raw_elasticity"] - enough["truth"]).abs().mean()),
        "elasticity_coverage_90": float(covered.mean()),
        "elasticity_mae_all_items": float((table[ELASTICITY] - table["truth"]).abs().mean()),
    }


def run_simulations(
    shop: ShopPaths, model: PricingModel, days: int, seeds: tuple[int, ...]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    results: list[SimulationResult] = [simulate(shop, model, days, seed) for seed in seeds]
    summary = pd.concat([result.summary for result in results], ignore_index=True)
    daily = results[0].daily
    by_policy = summary.groupby("policy")
    metrics = {}
    for policy in ("fixed", "optimizer", "oracle"):
        metrics[f"simulation.{policy}.profit_mean"] = float(by_policy["profit"].mean()[policy])
        metrics[f"simulation.{policy}.profit_sd"] = float(by_policy["profit"].std(ddof=0)[policy])
        metrics[f"simulation.{policy}.share_of_oracle_mean"] = float(
            by_policy["profit_share_of_oracle"].mean()[policy]
        )
        metrics[f"simulation.{policy}.share_of_oracle_sd"] = float(
            by_policy["profit_share_of_oracle"].std(ddof=0)[policy]
        )
        for column in ("revenue", "units", "stockout_item_days", "lost_units", "leftover_stock_units"):
            metrics[f"simulation.{policy}.{column}_mean"] = float(by_policy[column].mean()[policy])
    metrics["profit_share_of_oracle"] = metrics["simulation.optimizer.share_of_oracle_mean"]
    return summary, daily, metrics


def train_pricing(
    shop: ShopPaths,
    *,
    config_dir: Path = CONFIG_DIR,
    register: bool = True,
    simulation_days: int | None = None,
) -> PricingOutcome:
    started = time.perf_counter()
    settings = load_pricing_settings(config_dir)
    manifest = fresh_manifest(shop, config_dir)
    shop_settings = shop.settings()
    demand = load_output(shop, Outputs.DEMAND)
    products = read_table(shop, c.PRODUCTS)
    assert products is not None
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    elasticities, exposure = estimate_elasticities(demand, products, settings.elasticity)
    seconds["fit"] = round(time.perf_counter() - mark, 2)
    model = build_pricing_model(elasticities, demand, products, settings, shop_settings.currency, exposure)
    model.info = {"data_hash": manifest["input_hash"], "trained_until": str(demand[c.DATE].max().date())}
    metrics: dict[str, float] = {
        "items": float(len(elasticities)),
        "items_with_own_evidence": float((elasticities[EVIDENCE] == "item").sum()),
    }
    outcome = PricingOutcome(model, metrics, elasticities)
    if shop.ground_truth.exists():
        metrics.update(truth_metrics(elasticities, shop, settings))
        mark = time.perf_counter()
        days = simulation_days or settings.simulation.days
        outcome.simulation, outcome.simulation_daily, simulated = run_simulations(
            shop, model, days, settings.simulation.seeds
        )
        metrics.update(simulated)
        seconds["simulate"] = round(time.perf_counter() - mark, 2)
        metrics["gate_score"] = metrics["profit_share_of_oracle"]
        beats = metrics["simulation.optimizer.profit_mean"] > metrics["simulation.fixed.profit_mean"]
    else:
        mark = time.perf_counter()
        forecast, _ = forecast_check(demand, products, settings.elasticity, settings.evaluation.forecast_days)
        metrics.update({f"forecast.{key}": value for key, value in forecast.items()})
        seconds["forecast check"] = round(time.perf_counter() - mark, 2)
        metrics["gate_score"] = 1 - forecast["wape_model"]
        beats = forecast["wape_model"] < min(
            forecast["wape_mean_28_days"], forecast["wape_same_weekday_last_week"]
        )
    metrics["beats_baselines"] = float(beats)
    seconds["total"] = round(time.perf_counter() - started, 2)
    outcome.seconds = seconds
    if register:
        outcome.run_id, outcome.version = log_pricing_run(
            outcome, shop, settings, str(manifest["input_hash"]), beats
        )
    return outcome


def log_pricing_run(
    outcome: PricingOutcome, shop: ShopPaths, settings: PricingSettings, data_hash: str, beats: bool
) -> tuple[str, str]:
    from inference.pricing.pyfunc import MODEL_CODE

    experiment = ensure_experiment(PRICING)
    scratch = tempfile.TemporaryDirectory(prefix="storewise-pricing-")  # deleted when the run is logged
    workdir = Path(scratch.name)
    with (
        scratch,
        mlflow.start_run(
            experiment_id=experiment, run_name=f"pricing {pd.Timestamp.now():%Y-%m-%d %H:%M}"
        ) as run,
    ):
        mlflow.log_params(flatten(settings))
        split = (
            f"simulation {settings.simulation.days} days, seeds {list(settings.simulation.seeds)}"
            if outcome.simulation is not None
            else f"forecast last {settings.evaluation.forecast_days} days"
        )
        mlflow.set_tags(
            {
                "data_hash": data_hash,
                "split": split,
                "beats_baselines": str(beats).lower(),
                "exposure": outcome.model.exposure,
                "best_other": "fixed list price"
                if outcome.simulation is not None
                else "mean of 28 days / same weekday last week",
            }
        )
        mlflow.log_metrics({key: value for key, value in outcome.metrics.items() if np.isfinite(value)})
        mlflow.log_metrics(
            {f"seconds.{key.replace(' ', '_')}": value for key, value in outcome.seconds.items()}
        )
        reports = workdir / "reports"
        reports.mkdir()
        outcome.elasticities.to_csv(reports / "elasticities.csv", index=False)
        elasticity_plot(outcome.elasticities, reports / "elasticities.png")
        if outcome.simulation is not None and outcome.simulation_daily is not None:
            outcome.simulation.to_csv(reports / "simulation.csv", index=False)
            simulation_plot(outcome.simulation_daily, reports / "simulation_price_and_stock.png")
        (reports / "environment.json").write_text(json.dumps(environment(), indent=2), encoding="utf-8")
        mlflow.log_artifacts(str(reports), artifact_path="reports")
        bundle = workdir / "bundle"
        outcome.model.save(bundle)
        packages = Path(__file__).resolve().parents[2]
        example = pd.DataFrame({c.ITEM_ID: [str(outcome.model.items[c.ITEM_ID].iloc[0])]})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=MODEL_CODE,
            artifacts={"bundle": str(bundle)},
            code_paths=[str(packages / "storewise"), str(packages / "inference")],
            signature=SIGNATURE,
            input_example=example,
            registered_model_name=PRICING,
            pip_requirements=["mlflow", "pandas", "numpy", "scikit-learn", "pyarrow", "pydantic", "pyyaml"],
        )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        for key, value in {
            "run_id": run.info.run_id,
            "data_hash": data_hash,
            "gate_score": f"{outcome.metrics['gate_score']:.6f}",
            "beats_baselines": str(beats).lower(),
        }.items():
            client.set_model_version_tag(PRICING, version, key, value)
        return run.info.run_id, version


def elasticity_plot(elasticities: pd.DataFrame, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    own = elasticities[elasticities[EVIDENCE] == "item"]
    axis.hist(own[ELASTICITY].clip(-8, 2), bins=40, alpha=0.8, label="items with their own evidence")
    axis.axvline(-1, color="grey", linestyle="--", label="unit elastic")
    axis.set_xlabel("elasticity (pooled)")
    axis.set_ylabel("items")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def simulation_plot(daily: pd.DataFrame, path: Path) -> None:
    items = daily["item_id"].unique()
    figure, axes = plt.subplots(2, len(items), figsize=(4 * len(items), 5), sharex=True, squeeze=False)
    for column, item in enumerate(items):
        for policy, rows in daily[daily["item_id"] == item].groupby("policy"):
            axes[0, column].plot(rows["day"], rows["price"], label=policy)
            axes[1, column].plot(rows["day"], rows["stock"], label=policy)
        axes[0, column].set_title(str(item))
        axes[1, column].set_xlabel("day")
    axes[0, 0].set_ylabel("price")
    axes[1, 0].set_ylabel("stock")
    axes[0, 0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def simulate_with_champion(
    shop: ShopPaths, days: int, seeds: tuple[int, ...], model_uri: str = f"models:/{PRICING}@champion"
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`storewise simulate`: the champion pricing model in the simulator, logged as a run."""
    if not shop.ground_truth.exists():
        raise DataError(
            "no ground truth: the simulator needs the demo shop's true demand (`storewise data generate`)",
            path=shop.root,
        )
    model = load_champion(PRICING, model_uri)
    summary, daily, metrics = run_simulations(shop, model, days, seeds)
    experiment = ensure_experiment(PRICING)
    with mlflow.start_run(experiment_id=experiment, run_name=f"simulation {days} days") as run:
        mlflow.set_tags({"kind": "simulation", "model_uri": model_uri})
        mlflow.log_params({"days": days, "seeds": json.dumps(list(seeds))})
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory(prefix="storewise-simulation-") as scratch:
            workdir = Path(scratch)
            summary.to_csv(workdir / "simulation.csv", index=False)
            simulation_plot(daily, workdir / "simulation_price_and_stock.png")
            mlflow.log_artifacts(str(workdir), artifact_path="reports")
    return summary, {**metrics, "run_id": run.info.run_id}
