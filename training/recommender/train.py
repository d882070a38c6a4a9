"""`storewise train recommender`: tune on validation weeks, compare on the test weeks,
refit on everything, log to MLflow and register.

1. Validation folds end where the test weeks begin. On the first, LightFM trains epoch
   by epoch until validation NDCG@10 stops improving (the learning curve is logged); with
   `--search`, a few LightFM settings are tried the same way, each a child run.
2. On every fold the hybrid's components are fitted and ranked, and the blend weights are
   tuned per protocol on the folds' mean NDCG@10.
3. On the test weeks the hybrid, LightFM alone, the baselines and the peers are fitted
   on the same data and evaluated under the same masks: the side-by-side comparison.
4. The hybrid is refitted on all the data and logged as a pyfunc with its bundle, then
   registered as `storewise-recommender` (promotion is a separate, gated step).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from inference.recommender.scoring import HybridModel
from storewise import columns as c
from storewise.config import CONFIG_DIR
from storewise.errors import DataError
from storewise.shop import ShopPaths
from training.recommender.blend import FoldScores, fold_scores, tune
from training.recommender.bundle import write_model_bundle
from training.recommender.data import TrainData, Truth, build_truth, split_cutoffs
from training.recommender.evaluate import PROTOCOLS, Protocol, evaluate, evaluate_protocols, records
from training.recommender.hybrid import BlendView
from training.recommender.metrics import ranking_metrics
from training.recommender.mlflow_run import log_run
from training.recommender.outcome import PRIMARY_METRIC, TrainOutcome
from training.recommender.trainer import Trainer, peers

Window = tuple[pd.Timestamp, pd.Timestamp]
STEPS = ("validation data", "lightfm epochs", "validation folds", "blend", "test comparison", "final fit")


@dataclass
class Folds:
    """The validation folds: each one's data before the fold, truth in it, protocols."""

    windows: list[Window]
    data: list[TrainData]
    truth: list[Truth]
    protocols: list[dict[str, Protocol]] = field(default_factory=list)


@dataclass
class LightFmChoice:
    """LightFM's settings for the run: epochs by early stopping, `--search` overrides."""

    epochs: int
    value: float
    curve: list[tuple[int, float]]
    overrides: dict[str, Any] = field(default_factory=dict)
    search_results: list[dict[str, Any]] = field(default_factory=list)


def fold_windows(test_cutoff: pd.Timestamp, days: int, count: int) -> list[Window]:
    """`count` windows of `days` each, ending where the test weeks begin (latest first)."""
    return [
        (test_cutoff - pd.Timedelta(days=(i + 1) * days), test_cutoff - pd.Timedelta(days=i * days))
        for i in range(count)
    ]


def validation_folds(trainer: Trainer, windows: list[Window]) -> Folds:
    data = [trainer.data_at(cutoff) for cutoff, _ in windows]
    customers = trainer.tables[c.CUSTOMERS]
    truth = [
        build_truth(trainer.orders, customers, fold, window)
        for fold, window in zip(data, windows, strict=True)
    ]
    if not len(truth[0].user_index):
        start, end = windows[0]
        raise DataError(
            f"no customer with history bought anything in the validation weeks ({start:%Y-%m-%d} to "
            f"{end:%Y-%m-%d}); the shop needs more history, or shorter evaluation windows in "
            "config/recommender.yaml",
            path=trainer.shop.root,
        )
    return Folds(windows, data, truth, [trainer.protocols(fold) for fold in data])


def choose_lightfm(trainer: Trainer, folds: Folds, search: bool) -> LightFmChoice:
    """Epochs by early stopping on the first fold; with `search`, the best trial's settings."""
    primary = trainer.settings.evaluation.primary_protocol
    data, truth, protocol = folds.data[0], folds.truth[0], folds.protocols[0][primary]
    results: list[dict[str, Any]] = []
    overrides: dict[str, Any] = {}
    if search:
        for components in trainer.settings.search.components:
            for rate in trainer.settings.search.learning_rate:
                trial = {"components": components, "learning_rate": rate}
                epochs, value, _ = trainer.early_stopping(data, truth, protocol, trial)
                results.append({**trial, "epochs": epochs, f"validation_{PRIMARY_METRIC}": value})
        best = max(results, key=lambda row: row[f"validation_{PRIMARY_METRIC}"])
        overrides = {"components": best["components"], "learning_rate": best["learning_rate"]}
    epochs, value, curve = trainer.early_stopping(data, truth, protocol, overrides)
    return LightFmChoice(epochs, value, curve, overrides, results)


def fold_tuning(
    trainer: Trainer, folds: Folds, choice: LightFmChoice
) -> tuple[dict[str, list[FoldScores]], list[str]]:
    """Every component's ranks on every fold and protocol, for the blend tuning."""
    tuning: dict[str, list[FoldScores]] = {protocol: [] for protocol in PROTOCOLS}
    available: list[str] = []
    for index, (data, truth, protocols) in enumerate(
        zip(folds.data, folds.truth, folds.protocols, strict=True)
    ):
        hybrid = trainer.hybrid(data, trainer.lightfm(choice.epochs, choice.overrides).fit(data))
        available = hybrid.available
        for protocol in PROTOCOLS:
            tuning[protocol].append(fold_scores(hybrid, truth, protocols[protocol], seed=index))
    return tuning, available


def tune_blends(
    trainer: Trainer, tuning: dict[str, list[FoldScores]], available: list[str]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Blend weights per protocol and their validation NDCG@10."""
    blend = trainer.settings.blend
    blends, scores = {}, {}
    for protocol in PROTOCOLS:
        blends[protocol], scores[protocol], _ = tune(tuning[protocol], available, blend.grid, blend.passes)
    return blends, scores


def test_comparison(
    trainer: Trainer, window: Window, choice: LightFmChoice, blends: dict[str, dict[str, float]]
) -> pd.DataFrame:
    """The hybrid, LightFM alone, the baselines and the peers on the test weeks, under the
    same masks: flat {model, protocol, metric, k, value} rows."""
    data = trainer.data_at(window[0])
    truth = build_truth(trainer.orders, trainer.tables[c.CUSTOMERS], data, window)
    protocols = trainer.protocols(data)
    lightfm = trainer.lightfm(choice.epochs, choice.overrides).fit(data)
    hybrid = trainer.hybrid(data, lightfm)
    hybrid.blends = blends
    rows: list[dict[str, object]] = []
    for protocol in PROTOCOLS:
        view = BlendView(hybrid, protocol)
        rows += records(view.name, protocol, evaluate(view, data, truth, protocols[protocol]))
    for scorer in [lightfm, *peers(data.n_items, trainer.settings)]:
        if scorer is not lightfm:
            scorer.fit(data)
        for protocol, metrics in evaluate_protocols(scorer, data, truth, protocols).items():
            rows += records(scorer.name, protocol, metrics)
    rows += records("cold_start", "all_purchases", cold_start_metrics(hybrid, truth))
    return pd.DataFrame(rows)


def final_fit(
    trainer: Trainer, end: pd.Timestamp, choice: LightFmChoice, blends: dict[str, dict[str, float]]
) -> HybridModel:
    """The hybrid refitted on all the data: the model that is registered."""
    data = trainer.data_at(end)
    final = trainer.hybrid(data, trainer.lightfm(choice.epochs, choice.overrides).fit(data))
    final.blends = blends
    final.precompute_lightfm_top()
    final.info = {
        "data_hash": trainer.data_hash,
        "trained_until": str(end),
        "lightfm_epochs": choice.epochs,
        "lightfm_seed": trainer.settings.lightfm.seed,
    }
    return final


def step_timer(trainer: Trainer, bar: tqdm) -> Callable[[str, float], float]:
    """Records a step's seconds and moves the progress bar; returns the next step's start."""

    def step(name: str, since: float) -> float:
        trainer.seconds[name] = round(time.perf_counter() - since, 2)
        bar.set_postfix_str(f"done: {name}")
        bar.update(1)
        return time.perf_counter()

    return step


def train_recommender(
    shop: ShopPaths,
    *,
    config_dir: Path = CONFIG_DIR,
    search: bool = False,
    register: bool = True,
    evaluation: dict[str, Any] | None = None,
) -> TrainOutcome:
    """`evaluation` overrides keys of the evaluation settings (test_days, ...)."""
    started = time.perf_counter()
    trainer = Trainer(shop, config_dir, evaluation)
    windows = trainer.settings.evaluation
    test_cutoff, end = split_cutoffs(trainer.orders, windows.test_days, windows.validation_days)["test"]
    bar = tqdm(total=len(STEPS), desc="training recommender", unit="step")
    step = step_timer(trainer, bar)

    mark = time.perf_counter()
    folds = validation_folds(
        trainer, fold_windows(test_cutoff, windows.validation_days, windows.validation_folds)
    )
    mark = step("validation data", mark)
    choice = choose_lightfm(trainer, folds, search)
    mark = step("lightfm epochs", mark)
    tuning, available = fold_tuning(trainer, folds, choice)
    mark = step("validation folds", mark)
    blends, validation_scores = tune_blends(trainer, tuning, available)
    mark = step("blend", mark)
    comparison = test_comparison(trainer, (test_cutoff, end), choice, blends)
    mark = step("test comparison", mark)
    final = final_fit(trainer, end, choice, blends)
    step("final fit", mark)
    bar.close()
    trainer.seconds["total"] = round(time.perf_counter() - started, 2)

    outcome = TrainOutcome(
        None, None, windows.primary_protocol, comparison, choice.curve, blends, trainer.seconds
    )
    workdir = Path(tempfile.mkdtemp(prefix="storewise-recommender-"))
    # the bundle lives as long as the outcome (callers read it); deleted with it or at exit
    weakref.finalize(outcome, shutil.rmtree, workdir, ignore_errors=True)
    outcome.bundle = write_model_bundle(workdir / "bundle", trainer, final)
    if register:
        outcome.run_id, outcome.version = log_run(
            outcome,
            trainer=trainer,
            validation_scores=validation_scores,
            best_epochs=choice.epochs,
            best_value=choice.value,
            search_results=choice.search_results,
            overrides=choice.overrides,
            folds=folds.windows,
            test_window=(test_cutoff, end),
            workdir=workdir,
        )
    return outcome


def cold_start_metrics(model: HybridModel, truth: Truth) -> dict[str, float]:
    """Customers buying in the test weeks with no history: what trending alone gets them."""
    if not len(truth.cold_start_customers):
        return {"users": 0.0}
    ranked = np.argsort(-model.vectors["trending"], kind="stable")[:20]
    ranked = np.tile(ranked, (len(truth.cold_start_items), 1))
    metrics = ranking_metrics(ranked, truth.cold_start_items)
    metrics["users"] = float(len(truth.cold_start_items))
    return metrics
