"""Logging a recommender training run to MLflow and registering its model.

Metric names: `<protocol>.<model>.<metric>_at_<k>` for the test comparison (the hybrid,
LightFM alone, baselines and peers side by side), `<protocol>.hybrid_minus.<model>.{mean,low,high}`
for the hybrid's NDCG@10 minus each model's with its paired bootstrap interval,
`ndcg_at_10` for the hybrid under the primary protocol (what the promotion gate reads),
`validation.lightfm.ndcg_at_10` per epoch (the learning curve) and
`validation.<protocol>.hybrid_minus.<component>.*` for the blend against each of its
components on the validation folds. Tags carry the data hash and split the gate compares
on, and the verdict against the best peer; `reports/per_customer.csv` holds each test
customer's NDCG@10 per model, so the gate can compare two runs customer by customer.
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

from inference.recommender.pyfunc import MODEL_CODE, SIGNATURE
from inference.registry import RECOMMENDER
from storewise import columns as c
from training.recommender.outcome import PRIMARY_METRIC, TrainOutcome, flat_params
from training.recommender.trainer import Trainer
from training.recommender.validation import LightFmChoice
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


# how the test weeks' catalogue was chosen (README, "The recommender", step 4)
TEST_CATALOGUE = "as of the test cutoff"


def log_run(
    outcome: TrainOutcome,
    *,
    trainer: Trainer,
    choice: LightFmChoice,
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
            {
                "lightfm.epochs_chosen": choice.epochs,
                "lightfm.search_overrides": json.dumps(choice.overrides),
                "lightfm.blended": choice.blended,
                "test_weeks.unlaunched_items": outcome.unlaunched_items,
            }
        )
        # why LightFM was (not) fitted on the other folds: its gain on the latest fold
        params.update(
            {f"lightfm.screen.{protocol}": gain.describe() for protocol, gain in choice.screen.items()}
        )
        if choice.confirmation is not None:  # asked once the screen kept it: the latest two folds
            params.update(
                {
                    f"lightfm.confirmation.{protocol}": gain.describe()
                    for protocol, gain in choice.confirmation.items()
                }
                or {"lightfm.confirmation": "no blend keeps it"}
            )
        for protocol, weights in outcome.blends.items():
            params.update({f"blend.{protocol}.{name}": weight for name, weight in weights.items()})
        # which protocols the learned reranker answers, and why (its held-out gain)
        params.update(
            {f"rerank.{protocol}.chosen": rerank.describe() for protocol, rerank in outcome.rerank.items()}
        )
        mlflow.log_params(params)
        mlflow.set_tags(
            {
                "data_hash": trainer.data_hash,
                "split": f"test {test_window[0]:%Y-%m-%d}..{test_window[1]:%Y-%m-%d}",
                "validation_folds": "; ".join(f"{a:%Y-%m-%d}..{b:%Y-%m-%d}" for a, b in folds),
                "primary_protocol": outcome.primary_protocol,
                # the test truth's definition: a champion logged without it counted items not
                # yet launched at the test cutoff, so it is not compared customer by customer
                "test_catalogue": TEST_CATALOGUE,
                "shop": settings.name,
                "shop_source": settings.source,
            }
        )
        log_learning_curve(run.info.run_id, outcome.learning_curve)
        metrics = run_metrics(outcome)
        verdicts = verdict_tags(outcome)
        mlflow.set_tags(verdicts)
        # The model first, then its metrics linked to it: logged the other way round, MLflow
        # reads back every metric's history one query at a time to link them (8 s of a 40 s run).
        version, model_id = register(
            outcome, trainer, run.info.run_id, {PRIMARY_METRIC: f"{metrics[PRIMARY_METRIC]:.6f}", **verdicts}
        )
        mlflow.log_metrics(metrics, model_id=model_id)
        for trial in choice.search_results:
            with mlflow.start_run(
                run_name=f"lightfm search {trial['components']}x{trial['learning_rate']}", nested=True
            ):
                mlflow.log_params(
                    {key: value for key, value in trial.items() if not key.startswith("validation")}
                )
                mlflow.log_metric(
                    f"validation.lightfm.{PRIMARY_METRIC}", trial[f"validation_{PRIMARY_METRIC}"]
                )
        log_reports(outcome, choice.epochs, workdir / "reports")
        return run.info.run_id, version


def log_learning_curve(run_id: str, curve: list[tuple[int, float]]) -> None:
    """Validation NDCG@10 per epoch, as the steps of one metric, in one batch: one
    `log_metric` per epoch was a write each (0.5 s for 19 epochs on a SQLite store)."""
    now = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(
        run_id,
        metrics=[Metric(f"validation.lightfm.{PRIMARY_METRIC}", value, now, epoch) for epoch, value in curve],
    )


def run_metrics(outcome: TrainOutcome) -> dict[str, float]:
    metrics = {}
    for row in outcome.comparison.itertuples():
        suffix = f"{row.metric}_at_{int(row.k)}" if pd.notna(row.k) else str(row.metric)
        metrics[f"{row.protocol}.{row.model}.{suffix}"] = float(row.value)
    for row in outcome.intervals.itertuples():
        for part in ("mean", "low", "high"):
            metrics[f"{row.protocol}.hybrid_minus.{row.model}.{part}"] = float(getattr(row, part))
    for protocol, tuned in outcome.validation.items():
        metrics[f"validation.hybrid.{protocol}.{PRIMARY_METRIC}"] = tuned.value
        metrics[f"validation.hybrid.{protocol}.shrinkage"] = tuned.shrinkage
        for name, interval in tuned.versus_components.items():
            for part in ("mean", "low", "high"):
                metrics[f"validation.{protocol}.hybrid_minus.{name}.{part}"] = getattr(interval, part)
    for protocol, rerank in outcome.rerank.items():
        metrics[f"validation.{protocol}.reranker_adopted"] = float(rerank.adopted)
        if rerank.gain is not None:
            for part in ("mean", "low", "high"):
                metrics[f"validation.{protocol}.reranker_minus_blend.{part}"] = getattr(rerank.gain, part)
    metrics[PRIMARY_METRIC] = outcome.value("hybrid")
    metrics.update(
        {f"seconds.{name.replace(' ', '_')}": seconds for name, seconds in outcome.seconds.items()}
    )
    return metrics


def verdict_tags(outcome: TrainOutcome) -> dict[str, str]:
    """Per protocol: does the hybrid beat its best peer (point estimate), is it clearly
    better (the interval above zero), and who that peer is, with the interval."""
    verdicts = {}
    for protocol in ("discovery", "all_purchases", "business_rules"):
        best_name, best_other = outcome.best_other(protocol)
        interval = outcome.interval(best_name, protocol)
        verdicts[f"beats_baselines.{protocol}"] = str(outcome.value("hybrid", protocol) > best_other).lower()
        verdicts[f"clearly_beats_baselines.{protocol}"] = str(interval.clearly_above_zero).lower()
        verdicts[f"best_other.{protocol}"] = (
            f"{best_name} {best_other:.4f}; hybrid minus it {interval.describe()} "
            f"({outcome.validation[protocol].users if protocol in outcome.validation else 0} validation rows)"
        )
    for protocol, tuned in outcome.validation.items():
        if tuned.dropped:
            verdicts[f"blend.{protocol}.dropped"] = ", ".join(tuned.dropped)
    return verdicts


def log_reports(outcome: TrainOutcome, best_epochs: int, reports: Path) -> None:
    reports.mkdir(exist_ok=True, parents=True)
    outcome.comparison.to_csv(reports / "comparison.csv", index=False)
    outcome.intervals.to_csv(reports / "intervals.csv", index=False)
    outcome.per_customer.to_csv(reports / "per_customer.csv", index=False)
    learning_curve_plot(outcome.learning_curve, best_epochs, reports / "learning_curve.png")
    comparison_plot(outcome.comparison, reports / "ndcg_at_10_by_model.png")
    (reports / "environment.json").write_text(json.dumps(environment(), indent=2), encoding="utf-8")
    mlflow.log_artifacts(str(reports), artifact_path="reports")


def register(outcome: TrainOutcome, trainer: Trainer, run_id: str, tags: dict[str, str]) -> tuple[str, str]:
    """Log the pyfunc with its bundle, register it, and tag the version for the gate; the
    registered version and the logged model's id (to link the run's metrics to it)."""
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
        conda_env=model_environment(requirements()),
        registered_model_name=RECOMMENDER,
        # on the logged model and on its registered version, each written at once (one
        # `set_model_version_tag` per tag was a write each)
        tags={
            "run_id": run_id,
            "data_hash": trainer.data_hash,
            "primary_protocol": outcome.primary_protocol,
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
