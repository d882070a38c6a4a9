"""Writing a recommender training run to MLflow and registering its model: the run as
`run_record.py` worked it out (the metric and tag names are described there).

Run in a process of its own (`training/tracking_process.py`): importing this module imports
MLflow, Matplotlib and the tracking store's SQLAlchemy (about 2 s), and `prepare` opens the
store (on a new SQLite store, its tables and migrations: about 1.3 s), both while the model
trains; `log_run` then writes the run once it is trained.
"""

from __future__ import annotations

import json
import time
from importlib.metadata import version as package_version
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

from inference.recommender.pyfunc import MODEL_CODE, SIGNATURE
from inference.registry import RECOMMENDER, tracking_uri
from storewise import columns as c
from training.recommender.outcome import PRIMARY_METRIC
from training.recommender.run_record import LoggedRun, RunRecord
from training.tracking import ensure_experiment, environment, model_environment

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


def store() -> str:
    return tracking_uri()


def prepare() -> None:
    """Open the store and the recommender's experiment (creating either if new), and check
    the model's requirements against this environment as logging it will (`register`):
    MLflow maps every installed distribution to its modules for that, once per process.
    Done here while the model trains, writing the wide stand-in's run after training took
    1.6-1.9 s instead of 2.2-2.3 s."""
    ensure_experiment(RECOMMENDER)
    warn_dependency_requirement_mismatches(requirements())


def log_run(record: RunRecord, workdir: Path) -> LoggedRun:
    """Write `record` as a run, log the model with its bundle and register it; `workdir`
    holds the reports' files until they are logged."""
    experiment = ensure_experiment(RECOMMENDER)
    with mlflow.start_run(experiment_id=experiment, run_name=record.run_name) as run:
        mlflow.log_params(record.params)
        mlflow.set_tags(record.tags)
        log_learning_curve(run.info.run_id, record.learning_curve)
        mlflow.set_tags(record.verdicts)
        # The model first, then its metrics linked to it: logged the other way round, MLflow
        # reads back every metric's history one query at a time to link them (8 s of a 40 s run).
        version, model_id = register(
            record,
            run.info.run_id,
            {PRIMARY_METRIC: f"{record.metrics[PRIMARY_METRIC]:.6f}", **record.verdicts},
        )
        mlflow.log_metrics(record.metrics, model_id=model_id)
        for trial in record.search_results:
            with mlflow.start_run(
                run_name=f"lightfm search {trial['components']}x{trial['learning_rate']}", nested=True
            ):
                mlflow.log_params(
                    {key: value for key, value in trial.items() if not key.startswith("validation")}
                )
                mlflow.log_metric(
                    f"validation.lightfm.{PRIMARY_METRIC}", trial[f"validation_{PRIMARY_METRIC}"]
                )
        log_reports(record, workdir / "reports")
        return LoggedRun(run.info.run_id, version, tracking_uri())


def log_learning_curve(run_id: str, curve: list[tuple[int, float]]) -> None:
    """Validation NDCG@10 per epoch, as the steps of one metric, in one batch: one
    `log_metric` per epoch was a write each (0.5 s for 19 epochs on a SQLite store)."""
    now = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(
        run_id,
        metrics=[Metric(f"validation.lightfm.{PRIMARY_METRIC}", value, now, epoch) for epoch, value in curve],
    )


def log_reports(record: RunRecord, reports: Path) -> None:
    reports.mkdir(exist_ok=True, parents=True)
    record.comparison.to_csv(reports / "comparison.csv", index=False)
    record.intervals.to_csv(reports / "intervals.csv", index=False)
    record.per_customer.to_csv(reports / "per_customer.csv", index=False)
    learning_curve_plot(record.learning_curve, record.best_epochs, reports / "learning_curve.png")
    comparison_plot(record.comparison, reports / "ndcg_at_10_by_model.png")
    (reports / "environment.json").write_text(json.dumps(environment(), indent=2), encoding="utf-8")
    mlflow.log_artifacts(str(reports), artifact_path="reports")


def register(record: RunRecord, run_id: str, tags: dict[str, str]) -> tuple[str, str]:
    """Log the pyfunc with its bundle, register it, and tag the version for the gate; the
    registered version and the logged model's id (to link the run's metrics to it)."""
    example = pd.DataFrame({c.CUSTOMER_ID: [record.example_customer], "k": np.array([10], dtype=np.int64)})
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=MODEL_CODE,
        artifacts={"bundle": str(record.bundle)},
        code_paths=[str(PACKAGES / "storewise"), str(PACKAGES / "inference")],
        signature=SIGNATURE,
        input_example=example,
        conda_env=model_environment(requirements()),
        registered_model_name=RECOMMENDER,
        # on the logged model and on its registered version, each written at once (one
        # `set_model_version_tag` per tag was a write each)
        tags={
            "run_id": run_id,
            "data_hash": record.data_hash,
            "primary_protocol": record.primary_protocol,
            **tags,
        },
    )
    return str(info.registered_model_version), info.model_id


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
