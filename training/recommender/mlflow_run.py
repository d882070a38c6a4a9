"""Logging a recommender training run to MLflow and registering its model.

Metric names: `<protocol>.<model>.<metric>_at_<k>` for the test comparison (the hybrid,
LightFM alone, baselines and peers side by side), `ndcg_at_10` for the hybrid under the
primary protocol (what the promotion gate reads), and `validation.lightfm.ndcg_at_10`
per epoch (the learning curve). Tags carry the data hash and split the gate compares on.
"""

from __future__ import annotations

import json
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from inference.recommender.pyfunc import MODEL_CODE, SIGNATURE
from inference.registry import RECOMMENDER
from storewise import columns as c
from training.recommender.outcome import PRIMARY_METRIC, TrainOutcome, flat_params
from training.recommender.trainer import Trainer
from training.tracking import ensure_experiment, environment

PACKAGES = Path(__file__).resolve().parents[2]
REQUIREMENTS = (
    "rectools-lightfm",
    "implicit",
    "mlflow",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "pyarrow",
    "pydantic",
    "pyyaml",
)


def requirements() -> list[str]:
    return [f"{name}=={package_version(name)}" for name in REQUIREMENTS]


def log_run(
    outcome: TrainOutcome,
    *,
    trainer: Trainer,
    validation_scores: dict[str, float],
    best_epochs: int,
    best_value: float,
    search_results: list[dict[str, Any]],
    overrides: dict[str, Any],
    folds: list[tuple[pd.Timestamp, pd.Timestamp]],
    test_window: tuple[pd.Timestamp, pd.Timestamp],
    workdir: Path,
) -> tuple[str, str]:
    experiment = ensure_experiment(RECOMMENDER)
    settings = trainer.shop.settings()
    with mlflow.start_run(
        experiment_id=experiment, run_name=f"hybrid {pd.Timestamp.now():%Y-%m-%d %H:%M}"
    ) as run:
        params = flat_params(trainer.settings, trainer.rules)
        params.update(
            {"lightfm.epochs_chosen": best_epochs, "lightfm.search_overrides": json.dumps(overrides)}
        )
        for protocol, weights in outcome.blends.items():
            params.update({f"blend.{protocol}.{name}": weight for name, weight in weights.items()})
        mlflow.log_params(params)
        mlflow.set_tags(
            {
                "data_hash": trainer.data_hash,
                "split": f"test {test_window[0]:%Y-%m-%d}..{test_window[1]:%Y-%m-%d}",
                "validation_folds": "; ".join(f"{a:%Y-%m-%d}..{b:%Y-%m-%d}" for a, b in folds),
                "primary_protocol": outcome.primary_protocol,
                "shop": settings.name,
                "shop_source": settings.source,
            }
        )
        for epoch, value in outcome.learning_curve:
            mlflow.log_metric(f"validation.lightfm.{PRIMARY_METRIC}", value, step=epoch)
        for protocol, value in validation_scores.items():
            mlflow.log_metric(f"validation.hybrid.{protocol}.{PRIMARY_METRIC}", value)
        metrics = {}
        for row in outcome.comparison.itertuples():
            suffix = f"{row.metric}_at_{int(row.k)}" if pd.notna(row.k) else str(row.metric)
            metrics[f"{row.protocol}.{row.model}.{suffix}"] = float(row.value)
        metrics[PRIMARY_METRIC] = outcome.value("hybrid")
        metrics.update(
            {f"seconds.{name.replace(' ', '_')}": seconds for name, seconds in outcome.seconds.items()}
        )
        mlflow.log_metrics(metrics)
        verdicts = {}
        for protocol in ("discovery", "all_purchases", "business_rules"):
            best_name, best_other = outcome.best_other(protocol)
            verdicts[f"beats_baselines.{protocol}"] = str(
                outcome.value("hybrid", protocol) > best_other
            ).lower()
            verdicts[f"best_other.{protocol}"] = f"{best_name} {best_other:.4f}"
        mlflow.set_tags(verdicts)
        for trial in search_results:
            with mlflow.start_run(
                run_name=f"lightfm search {trial['components']}x{trial['learning_rate']}", nested=True
            ):
                mlflow.log_params(
                    {key: value for key, value in trial.items() if not key.startswith("validation")}
                )
                mlflow.log_metric(
                    f"validation.lightfm.{PRIMARY_METRIC}", trial[f"validation_{PRIMARY_METRIC}"]
                )

        reports = workdir / "reports"
        reports.mkdir(exist_ok=True)
        outcome.comparison.to_csv(reports / "comparison.csv", index=False)
        learning_curve_plot(outcome.learning_curve, best_epochs, reports / "learning_curve.png")
        comparison_plot(outcome.comparison, reports / "ndcg_at_10_by_model.png")
        (reports / "environment.json").write_text(json.dumps(environment(), indent=2), encoding="utf-8")
        mlflow.log_artifacts(str(reports), artifact_path="reports")

        assert outcome.bundle is not None
        example_customer = str(trainer.customer_features[c.CUSTOMER_ID].iloc[0])
        example = pd.DataFrame({c.CUSTOMER_ID: [example_customer], "k": np.array([10], dtype=np.int64)})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=MODEL_CODE,
            artifacts={"bundle": str(outcome.bundle)},
            code_paths=[str(PACKAGES / "storewise"), str(PACKAGES / "inference")],
            signature=SIGNATURE,
            input_example=example,
            pip_requirements=requirements(),
            registered_model_name=RECOMMENDER,
        )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        for key, value in {
            "run_id": run.info.run_id,
            "data_hash": trainer.data_hash,
            PRIMARY_METRIC: f"{metrics[PRIMARY_METRIC]:.6f}",
            "primary_protocol": outcome.primary_protocol,
            **verdicts,
        }.items():
            client.set_model_version_tag(RECOMMENDER, version, key, value)
        return run.info.run_id, version


def learning_curve_plot(curve: list[tuple[int, float]], best_epoch: int, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    if curve:
        epochs, values = zip(*curve, strict=True)
        axis.plot(epochs, values, marker="o")
        axis.axvline(best_epoch, color="grey", linestyle="--", label=f"chosen: {best_epoch} epochs")
        axis.legend()
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation NDCG@10")
    axis.set_title("LightFM learning curve")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def comparison_plot(comparison: pd.DataFrame, path: Path) -> None:
    table = comparison[(comparison["metric"] == "ndcg") & (comparison["k"] == 10)].pivot(
        index="model", columns="protocol", values="value"
    )
    table = table.sort_values(table.columns[0])
    figure, axis = plt.subplots(figsize=(8, 0.35 * len(table) + 1.5))
    table.plot.barh(ax=axis)
    axis.set_xlabel("NDCG@10 on the test weeks")
    axis.set_title("Hybrid, LightFM, baselines and peers")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
