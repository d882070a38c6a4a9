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
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from tqdm import tqdm

from features.pipeline import Outputs, fresh_manifest, load_output
from inference.pricing.model import PricingModel
from inference.registry import PRICING, load_champion
from intake.tables import read_table
from storewise import columns as c
from storewise.columns import DEMAND_SHAPE, ELASTICITY, EVIDENCE, HIGH, LOW, SD
from storewise.config import CONFIG_DIR, flatten
from storewise.errors import DataError
from storewise.settings import PricingSettings, load_pricing_settings
from storewise.shop import ShopPaths
from training.pricing.build import build_panel_pricing_model, build_pricing_model
from training.pricing.elasticity import PRIOR_SPREAD, estimate_elasticities
from training.pricing.forecast import forecast_check
from training.pricing.panel import (
    CrossFinding,
    PanelFit,
    choose_spec,
    elasticity_table,
    fit_panel,
    panel_frame,
    product_table,
)
from training.pricing.panel_forecast import panel_forecast_check
from training.pricing.simulate import Refit, SimulationResult, paired_gain, simulate
from training.pricing.switchback import SWITCHBACK, with_price_tests
from training.tracking import ensure_experiment, environment, model_environment

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
    products: pd.DataFrame | None = None  # panel model: per product, with intervals
    cross: CrossFinding | None = None  # panel model: the cross-price effects' finding


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
    shop: ShopPaths, model: PricingModel, days: int, seeds: tuple[int, ...], refit: Refit | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """The simulator over seeds: per policy, profit, share of the oracle's profit, regret."""
    results: list[SimulationResult] = []
    with tqdm(total=len(seeds), desc="simulating", unit="seed", file=sys.stderr) as bar:
        for seed in seeds:
            results.append(
                simulate(
                    shop, model, days, seed, progress=lambda step: bar.set_postfix_str(step), refit=refit
                )
            )
            bar.update(1)
    summary = pd.concat([result.summary for result in results], ignore_index=True)
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
        metrics[f"simulation.{policy}.share_of_oracle_max"] = float(
            by_policy["profit_share_of_oracle"].max()[policy]
        )
        for column in (
            "revenue",
            "units",
            "stockout_item_days",
            "lost_units",
            "leftover_stock_units",
            "holding_cost",
            "regret",
        ):
            metrics[f"simulation.{policy}.{column}_mean"] = float(by_policy[column].mean()[policy])
    metrics["profit_share_of_oracle"] = metrics["simulation.optimizer.share_of_oracle_mean"]
    item_profit = pd.concat([result.item_profit for result in results], ignore_index=True)
    evaluation = model.settings.evaluation
    gain = paired_gain(item_profit, evaluation.bootstrap_samples, evaluation.bootstrap_seed)
    metrics.update({f"simulation.{name}": value for name, value in gain.items()})
    return summary, results[0].daily, metrics


def uses_panel(products: pd.DataFrame, settings: PricingSettings) -> bool:
    """The pooled panel model for store x product data (unless configured otherwise)."""
    model = settings.elasticity.model
    if model != "auto":
        return model == "panel"
    if c.PRODUCT not in products or products[c.PRODUCT].isna().all():
        return False
    return int(products[c.PRODUCT].nunique()) <= settings.elasticity.panel.max_products


def train_pricing(
    shop: ShopPaths,
    *,
    config_dir: Path = CONFIG_DIR,
    register: bool = True,
    simulation_days: int | None = None,
    forecast_days: int | None = None,
) -> PricingOutcome:
    """Fit, judge, log and register the pricing model of a shop (see the module's docstring)."""
    started = time.perf_counter()
    settings = load_pricing_settings(config_dir)
    if forecast_days is not None:
        evaluation = settings.evaluation.model_copy(update={"forecast_days": forecast_days})
        settings = settings.model_copy(update={"evaluation": evaluation})
    manifest = fresh_manifest(shop, config_dir)
    demand = load_output(shop, Outputs.DEMAND)
    products = read_table(shop, c.PRODUCTS)
    assert products is not None
    if uses_panel(products, settings):
        outcome = train_panel(shop, demand, products, settings)
    else:
        outcome = train_items(shop, demand, products, settings, simulation_days)
    outcome.model.info = {
        "data_hash": manifest["input_hash"],
        "trained_until": str(demand[c.DATE].max().date()),
    }
    outcome.seconds["total"] = round(time.perf_counter() - started, 2)
    if register:
        outcome.run_id, outcome.version = log_pricing_run(
            outcome, shop, settings, str(manifest["input_hash"]), bool(outcome.metrics["beats_baselines"])
        )
    return outcome


def train_items(
    shop: ShopPaths,
    demand: pd.DataFrame,
    products: pd.DataFrame,
    settings: PricingSettings,
    simulation_days: int | None,
) -> PricingOutcome:
    """One elasticity per item pooled by category; judged in the simulator (demo shop) or
    by a forecast of the last days (imported shops)."""
    shop_settings = shop.settings()
    mark = time.perf_counter()
    elasticities, exposure = estimate_elasticities(demand, products, settings.elasticity)
    elasticities = with_price_tests(elasticities, demand, shop)  # randomized prices, where tested
    seconds = {"fit": round(time.perf_counter() - mark, 2)}
    model = build_pricing_model(elasticities, demand, products, settings, shop_settings.currency, exposure)
    metrics: dict[str, float] = {
        "items": float(len(elasticities)),
        "items_with_own_evidence": float((elasticities[EVIDENCE] == "item").sum()),
    }
    if elasticities.attrs.get(PRIOR_SPREAD) is not None:
        metrics["elasticity_prior_spread"] = float(elasticities.attrs[PRIOR_SPREAD])
    outcome = PricingOutcome(model, metrics, elasticities, seconds=seconds)
    mark = time.perf_counter()
    if shop.ground_truth.exists():
        metrics.update(truth_metrics(elasticities, shop, settings))
        days = simulation_days or settings.simulation.days

        same_choices = settings.elasticity.model_copy(update=run_choices(elasticities))

        def refit(simulated: pd.DataFrame) -> PricingModel:
            """The model as this run fits it, on the history plus the simulated days (the
            simulator's live shop); items a price test measured keep the test's estimate."""
            history = pd.concat([demand, simulated], ignore_index=True)
            fitted, kind = estimate_elasticities(history, products, same_choices)
            return build_pricing_model(
                keep_tested(fitted, elasticities), history, products, settings, shop_settings.currency, kind
            )

        outcome.simulation, outcome.simulation_daily, simulated = run_simulations(
            shop, model, days, settings.simulation.seeds, refit
        )
        metrics.update(simulated)
        seconds["simulate"] = round(time.perf_counter() - mark, 2)
        metrics["gate_score"] = metrics["profit_share_of_oracle"]
        beats = metrics["simulation.optimizer.profit_mean"] > metrics["simulation.fixed.profit_mean"]
    else:
        forecast, _ = forecast_check(
            demand, products, settings.elasticity, settings.evaluation.forecast_days, settings.evaluation
        )
        metrics.update({f"forecast.{key}": value for key, value in forecast.items()})
        seconds["forecast check"] = round(time.perf_counter() - mark, 2)
        metrics["gate_score"] = 1 - forecast["wape_model"]
        beats = forecast["wape_model"] < min(
            forecast["wape_mean_28_days"], forecast["wape_same_weekday_last_week"]
        )
    metrics["beats_baselines"] = float(beats)
    return outcome


def run_choices(elasticities: pd.DataFrame) -> dict[str, object]:
    """The shop-level choices a run made that the simulator's weekly refits keep, as a live
    shop's settings would: the demand shape (a shop's shape does not change in weeks, and
    its test is a third of a fit's time) and the pooling prior's spread between items. The
    spread is a method of moments over every item: one item new to the refit with a wild
    estimate (raw -12.4, se 6.4, on the default demo shop) took it from 0.15 to 0.7-1.0,
    widening every item's interval for weeks until the estimate settled. (A category with
    fewer than two items with evidence falls back on the whole shop's prior, whose spread
    spans categories and is still estimated at each refit.)"""
    choices: dict[str, object] = {"shape": str(elasticities[DEMAND_SHAPE].iloc[0])}
    if elasticities.attrs.get(PRIOR_SPREAD) is not None:
        choices["prior_spread"] = float(elasticities.attrs[PRIOR_SPREAD])
    return choices


def keep_tested(fitted: pd.DataFrame, run: pd.DataFrame) -> pd.DataFrame:
    """`fitted` with the run's price-test estimates in place for the items a test measured."""
    if SWITCHBACK not in run or run[SWITCHBACK].isna().all():
        return fitted
    tested = run[run[SWITCHBACK].notna()].set_index(c.ITEM_ID)
    fitted = fitted.copy()
    where = fitted[c.ITEM_ID].isin(tested.index)
    for column in (ELASTICITY, SD, LOW, HIGH, EVIDENCE, SWITCHBACK):
        fitted.loc[where, column] = fitted.loc[where, c.ITEM_ID].map(tested[column]).to_numpy()
    return fitted


def train_panel(
    shop: ShopPaths, demand: pd.DataFrame, products: pd.DataFrame, settings: PricingSettings
) -> PricingOutcome:
    """Elasticities pooled across stores; judged by forecasting the last days at the
    prices charged against the same model without prices and two baselines."""
    shop_settings = shop.settings()
    panel, evaluation = settings.elasticity, settings.evaluation
    mark = time.perf_counter()
    with fit_progress("forecast check: fitting on the data before the cut") as progress:
        forecast = panel_forecast_check(
            demand, products, panel, evaluation, evaluation.forecast_days, shop_settings.period, progress
        )
    seconds = {"forecast check": round(time.perf_counter() - mark, 2)}
    mark = time.perf_counter()
    last = demand[c.DATE].max()
    frame = panel_frame(demand, products, last)
    with fit_progress("fitting elasticities on all the data") as progress:
        fit = fit_panel(frame, choose_spec(frame, panel, shop_settings.period), panel, progress)
    e = settings.elasticity
    elasticities = elasticity_table(fit, frame, e.min_units, e.min_log_price_sd)
    seconds["fit"] = round(time.perf_counter() - mark, 2)
    model = build_panel_pricing_model(
        fit, frame, elasticities, demand, products, settings, shop_settings.currency, shop_settings.period
    )
    outcome = PricingOutcome(
        model,
        panel_metrics(fit, elasticities, forecast.metrics, evaluation.baseline_periods),
        elasticities,
        seconds=seconds,
    )
    outcome.products = product_table(fit)
    outcome.cross = fit.cross
    return outcome


def panel_metrics(
    fit: PanelFit, elasticities: pd.DataFrame, forecast: dict[str, float], baseline_periods: int
) -> dict[str, float]:
    metrics: dict[str, float] = {
        "items": float(len(elasticities)),
        "items_with_own_evidence": float((elasticities[EVIDENCE] == "item").sum()),
        "panel.store_slope_sd": fit.slope_sd,
        "panel.dispersion": fit.glm.dispersion,
        "panel.cross_effects_used": float(fit.cross.used),
        "panel.cross_wald": fit.cross.wald,
        "panel.cross_p_value": fit.cross.p_value,
        "panel.share_negative_elasticity": float((elasticities[ELASTICITY] < 0).mean()),
        "panel.share_negative_high_90": float((elasticities[HIGH] < 0).mean()),
        **{f"forecast.{key}": value for key, value in forecast.items()},
    }
    for row in product_table(fit).itertuples(index=False):
        name = metric_name(str(getattr(row, c.PRODUCT)))
        metrics[f"elasticity.{name}"] = float(getattr(row, ELASTICITY))
        metrics[f"elasticity.{name}.low_90"] = float(getattr(row, f"{ELASTICITY}_low_90"))
        metrics[f"elasticity.{name}.high_90"] = float(getattr(row, f"{ELASTICITY}_high_90"))
    others = (
        "no_price",
        "last_period",
        *(key[5:] for key in forecast if key.startswith("wape_mean_") and key.count("_") == 3),
    )
    metrics["gate_score"] = 1 - forecast["wape_model"]
    metrics["beats_baselines"] = float(
        all(forecast["wape_model"] < forecast[f"wape_{name}"] for name in others)
    )
    return metrics


def metric_name(text: str) -> str:
    """A product code as an MLflow metric name part (letters, digits, _ - . only)."""
    return re.sub(r"[^A-Za-z0-9_\-.]", "_", text)[:100]


@contextmanager
def fit_progress(description: str) -> Iterator[Callable[[str], None]]:
    """A progress bar over the fits of a panel model (each step says what it fits)."""
    with tqdm(desc=description, unit="fit", file=sys.stderr) as bar:

        def progress(message: str) -> None:
            bar.set_postfix_str(message)
            bar.update(1)

        yield progress


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
        if outcome.cross is not None:
            mlflow.set_tag("cross_effects", outcome.cross.reason)
        shape = outcome.elasticities.attrs.get("findings", {}).get(DEMAND_SHAPE)
        if shape is not None:
            mlflow.set_tag("demand_shape", shape.reason)
        mlflow.set_tags(
            {
                "data_hash": data_hash,
                "split": split,
                "beats_baselines": str(beats).lower(),
                "exposure": outcome.model.exposure,
                "best_other": best_other(outcome, settings),
            }
        )
        mlflow.log_metrics({key: value for key, value in outcome.metrics.items() if np.isfinite(value)})
        mlflow.log_metrics(
            {f"seconds.{key.replace(' ', '_')}": value for key, value in outcome.seconds.items()}
        )
        reports = workdir / "reports"
        reports.mkdir()
        outcome.elasticities.to_csv(reports / "elasticities.csv", index=False)
        if outcome.products is not None:
            outcome.products.to_csv(reports / "products.csv", index=False)
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
            conda_env=model_environment(
                ["mlflow", "pandas", "numpy", "scikit-learn", "pyarrow", "pydantic", "pyyaml"]
            ),
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


def best_other(outcome: PricingOutcome, settings: PricingSettings) -> str:
    """What the model is compared with in this run."""
    if outcome.simulation is not None:
        return "fixed list price"
    if outcome.products is not None:
        return f"same model without prices / last period / mean of the last {settings.evaluation.baseline_periods} periods"
    return "mean of 28 days / same weekday last week"


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
    """`storewise simulate`: the champion pricing model in the simulator, logged as a run:
    the registered model as it is (refitting needs the shop's training, which `train
    pricing`'s own simulation does)."""
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
        mlflow.log_params({"days": days, "seeds": json.dumps(list(seeds)), "refit_every_days": 0})
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory(prefix="storewise-simulation-") as scratch:
            workdir = Path(scratch)
            summary.to_csv(workdir / "simulation.csv", index=False)
            simulation_plot(daily, workdir / "simulation_price_and_stock.png")
            mlflow.log_artifacts(str(workdir), artifact_path="reports")
    return summary, {**metrics, "run_id": run.info.run_id}
