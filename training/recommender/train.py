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

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from features.pipeline import Outputs, fresh_manifest, load_output
from features.tables import read_tables
from storewise import columns as c
from storewise.config import CONFIG_DIR, flatten
from storewise.errors import DataError
from storewise.settings import (
    BusinessRules,
    RecommenderSettings,
    load_business_rules,
    load_recommender_settings,
)
from storewise.shop import ShopPaths
from training.recommender import models as m
from training.recommender.blend import FoldScores, fold_scores, tune
from training.recommender.data import TrainData, Truth, build_train_data, build_truth, split_cutoffs
from training.recommender.evaluate import (
    PROTOCOLS,
    Protocol,
    evaluate,
    evaluate_protocols,
    make_protocol,
    records,
)
from training.recommender.hybrid import HybridModel, fit_hybrid
from training.recommender.metrics import ranking_metrics

log = logging.getLogger(__name__)
PRIMARY_METRIC = "ndcg_at_10"


@dataclass
class TrainOutcome:
    run_id: str | None
    version: str | None
    primary_protocol: str
    comparison: pd.DataFrame
    learning_curve: list[tuple[int, float]]
    blends: dict[str, dict[str, float]]
    seconds: dict[str, float] = field(default_factory=dict)
    bundle: Path | None = None

    def value(self, model: str, protocol: str | None = None, metric: str = "ndcg", k: int = 10) -> float:
        protocol = protocol or self.primary_protocol
        rows = self.comparison[(self.comparison["model"] == model) & (self.comparison["protocol"] == protocol)
                               & (self.comparison["metric"] == metric) & (self.comparison["k"] == k)]  # fmt: skip
        return float(rows["value"].iloc[0])

    def best_other(
        self, protocol: str | None = None, exclude: tuple[str, ...] = ("hybrid", "lightfm", "cold_start")
    ) -> tuple[str, float]:
        """The best baseline or peer (LightFM alone is a component of the hybrid, not a baseline)."""
        protocol = protocol or self.primary_protocol
        rows = self.comparison[(self.comparison["protocol"] == protocol) & (self.comparison["metric"] == "ndcg")
                               & (self.comparison["k"] == 10) & ~self.comparison["model"].isin(exclude)]  # fmt: skip
        best = rows.loc[rows["value"].idxmax()]
        return str(best["model"]), float(best["value"])


def peers(n_items: int, settings: RecommenderSettings) -> list[m.Recommender]:
    """Baselines and the peers a data scientist would try, each with counts and bought/not-bought."""
    components = settings.components
    models: list[m.Recommender] = [
        m.Popularity(),
        m.Popularity(trending=True),
        m.Cooccurrence(),
        m.BuyAgain(),
    ]
    for binary in (True, False):
        suffix = "binary" if binary else "counts"
        variants: list[m.Recommender] = [
            m.ItemKnnBm25(neighbours=components.bm25_neighbours, source="purchases", binary=binary),
            m.Als(source="purchases", binary=binary),
        ]
        if n_items <= components.max_ease_items:
            variants.append(
                m.Ease(
                    components.ease_regularization,
                    "purchases",
                    binary=binary,
                    neighbours=components.item_neighbours,
                )
            )
        for model in variants:
            model.name = f"{model.name}_{suffix}"
            models.append(model)
    return models


def one_time_mask(data: TrainData, products: pd.DataFrame, rules: BusinessRules) -> np.ndarray:
    categories = products.set_index(c.ITEM_ID)[c.CATEGORY].reindex(data.item_ids).fillna("").to_numpy()
    return np.isin(categories, list(rules.one_time_categories))


class Trainer:
    def __init__(
        self, shop: ShopPaths, config_dir: Path = CONFIG_DIR, evaluation: dict[str, Any] | None = None
    ) -> None:
        self.shop = shop
        settings = load_recommender_settings(config_dir)
        if evaluation:
            settings = settings.model_copy(
                update={"evaluation": settings.evaluation.model_copy(update=evaluation)}
            )
        self.settings = settings
        self.rules = load_business_rules(config_dir)
        self.config_dir = config_dir
        manifest = fresh_manifest(shop, config_dir)
        self.data_hash = str(manifest["input_hash"])
        self.tables = read_tables(shop)
        self.item_features = load_output(shop, Outputs.ITEM_FEATURES)
        self.customer_features = load_output(shop, Outputs.CUSTOMER_FEATURES)
        self.orders = self.tables[c.ORDERS]
        self.seconds: dict[str, float] = {}

    def data_at(self, cutoff: pd.Timestamp) -> TrainData:
        evaluation, components = self.settings.evaluation, self.settings.components
        return build_train_data(self.tables, self.item_features, self.settings.interactions, cutoff,
                                trending_days=evaluation.trending_days, repeat_half_life_days=components.repeat_half_life_days)  # fmt: skip

    def protocols(self, data: TrainData) -> dict[str, Protocol]:
        mask = one_time_mask(data, self.tables[c.PRODUCTS], self.rules)
        return {name: make_protocol(name, data, mask) for name in PROTOCOLS}

    def lightfm(self, epochs: int, overrides: dict[str, Any] | None = None) -> m.LightFmHybrid:
        s = self.settings.lightfm
        options = {"loss": s.loss, "components": s.components, "learning_rate": s.learning_rate, "item_alpha": s.item_alpha,
                   "user_alpha": s.user_alpha, "max_sampled": s.max_sampled, "use_features": s.use_features,
                   "threads": s.threads, **(overrides or {})}  # fmt: skip
        return m.LightFmHybrid(epochs=epochs, **options)

    def hybrid(self, data: TrainData, lightfm: m.LightFmHybrid) -> HybridModel:
        s = self.settings.components
        model = fit_hybrid(data, self.orders, lightfm, ease_regularization=s.ease_regularization, bm25_neighbours=s.bm25_neighbours,
                           item_neighbours=s.item_neighbours, recent_half_life_days=s.recent_half_life_days,
                           trending_half_life_days=s.trending_half_life_days, max_ease_items=s.max_ease_items)  # fmt: skip
        model.candidates, model.rank_offset = self.settings.blend.candidates, self.settings.blend.rank_offset
        return model

    def early_stopping(
        self, data: TrainData, truth: Truth, protocol: Protocol, overrides: dict[str, Any] | None = None
    ) -> tuple[int, float, list[tuple[int, float]]]:
        settings = self.settings.lightfm
        curve: list[tuple[int, float]] = []
        best = (0, -1.0)

        def on_epoch(epoch: int, model: m.LightFmHybrid) -> bool:
            nonlocal best
            value = evaluate(model, data, truth, protocol)[PRIMARY_METRIC]
            curve.append((epoch, value))
            if value > best[1]:
                best = (epoch, value)
            return epoch - best[0] >= settings.patience

        self.lightfm(settings.max_epochs, overrides).fit(data, on_epoch=on_epoch)
        return best[0], best[1], curve


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
    settings = trainer.settings
    windows = settings.evaluation
    cuts = split_cutoffs(trainer.orders, windows.test_days, windows.validation_days)
    test_cutoff, end = cuts["test"]
    folds = [(test_cutoff - pd.Timedelta(days=(i + 1) * windows.validation_days), test_cutoff - pd.Timedelta(days=i * windows.validation_days))
             for i in range(windows.validation_folds)]  # fmt: skip
    primary = windows.primary_protocol
    steps = ["validation data", "lightfm epochs", "validation folds", "blend", "test comparison", "final fit"]
    bar = tqdm(total=len(steps), desc="training recommender", unit="step")

    def step(name: str, since: float) -> float:
        trainer.seconds[name] = round(time.perf_counter() - since, 2)
        bar.set_postfix_str(f"done: {name}")
        bar.update(1)
        return time.perf_counter()

    mark = time.perf_counter()
    fold_data = [trainer.data_at(cutoff) for cutoff, _ in folds]
    fold_truth = [
        build_truth(trainer.orders, trainer.tables[c.CUSTOMERS], data, window)
        for data, window in zip(fold_data, folds, strict=True)
    ]
    if not len(fold_truth[0].user_index):
        raise DataError(f"no customer with history bought anything in the validation weeks ({folds[0][0]:%Y-%m-%d} to {folds[0][1]:%Y-%m-%d}); "
                        "the shop needs more history, or shorter evaluation windows in config/recommender.yaml", path=shop.root)  # fmt: skip
    mark = step("validation data", mark)

    fold_protocols = [trainer.protocols(data) for data in fold_data]
    search_results: list[dict[str, Any]] = []
    overrides: dict[str, Any] = {}
    if search:
        for components in settings.search.components:
            for rate in settings.search.learning_rate:
                trial = {"components": components, "learning_rate": rate}
                epochs, value, _ = trainer.early_stopping(
                    fold_data[0], fold_truth[0], fold_protocols[0][primary], trial
                )
                search_results.append({**trial, "epochs": epochs, f"validation_{PRIMARY_METRIC}": value})
        best_trial = max(search_results, key=lambda row: row[f"validation_{PRIMARY_METRIC}"])
        overrides = {"components": best_trial["components"], "learning_rate": best_trial["learning_rate"]}
    best_epochs, best_value, curve = trainer.early_stopping(
        fold_data[0], fold_truth[0], fold_protocols[0][primary], overrides
    )
    mark = step("lightfm epochs", mark)

    tuning: dict[str, list[FoldScores]] = {protocol: [] for protocol in PROTOCOLS}
    available: list[str] = []
    for index, (data, truth, protocols) in enumerate(zip(fold_data, fold_truth, fold_protocols, strict=True)):
        lightfm = trainer.lightfm(best_epochs, overrides).fit(data)
        hybrid = trainer.hybrid(data, lightfm)
        available = hybrid.available
        for protocol in PROTOCOLS:
            tuning[protocol].append(fold_scores(hybrid, truth, protocols[protocol], seed=index))
    mark = step("validation folds", mark)

    blends: dict[str, dict[str, float]] = {}
    validation_scores: dict[str, float] = {}
    for protocol in PROTOCOLS:
        weights, value, _ = tune(tuning[protocol], available, settings.blend.grid, settings.blend.passes)
        blends[protocol] = weights
        validation_scores[protocol] = value
    mark = step("blend", mark)

    test_data = trainer.data_at(test_cutoff)
    test_truth = build_truth(trainer.orders, trainer.tables[c.CUSTOMERS], test_data, (test_cutoff, end))
    test_protocols = trainer.protocols(test_data)
    lightfm = trainer.lightfm(best_epochs, overrides).fit(test_data)
    hybrid = trainer.hybrid(test_data, lightfm)
    hybrid.blends = blends
    rows: list[dict[str, object]] = []
    for protocol in PROTOCOLS:
        view = hybrid.for_protocol(protocol)
        rows += records(view.name, protocol, evaluate(view, test_data, test_truth, test_protocols[protocol]))
    for scorer in [lightfm, *peers(test_data.n_items, settings)]:
        if scorer is not lightfm:
            scorer.fit(test_data)
        for protocol, metrics in evaluate_protocols(scorer, test_data, test_truth, test_protocols).items():
            rows += records(scorer.name, protocol, metrics)
    rows += records("cold_start", "all_purchases", cold_start_metrics(hybrid, test_truth))
    comparison = pd.DataFrame(rows)
    mark = step("test comparison", mark)

    final_data = trainer.data_at(end)
    final_lightfm = trainer.lightfm(best_epochs, overrides).fit(final_data)
    final = trainer.hybrid(final_data, final_lightfm)
    final.blends = blends
    final.precompute_lightfm_top()
    final.info = {"data_hash": trainer.data_hash, "trained_until": str(end), "lightfm_epochs": best_epochs}
    step("final fit", mark)
    bar.close()
    trainer.seconds["total"] = round(time.perf_counter() - started, 2)

    outcome = TrainOutcome(None, None, primary, comparison, curve, blends, trainer.seconds)
    workdir = Path(tempfile.mkdtemp(prefix="storewise-recommender-"))
    outcome.bundle = write_model_bundle(workdir / "bundle", trainer, final)
    if register:
        from training.recommender.mlflow_run import log_run

        outcome.run_id, outcome.version = log_run(
            outcome, trainer=trainer, validation_scores=validation_scores, best_epochs=best_epochs,
            best_value=best_value, search_results=search_results, overrides=overrides, folds=folds,
            test_window=(test_cutoff, end), workdir=workdir,
        )  # fmt: skip
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


def write_model_bundle(directory: Path, trainer: Trainer, model: HybridModel) -> Path:
    from training.recommender.pyfunc import write_bundle
    from training.recommender.recommend import group_popularity

    products = trainer.tables[c.PRODUCTS]
    catalog = products[[c.ITEM_ID, c.NAME, c.CATEGORY, c.STOCK, c.LIST_PRICE]]
    consent = trainer.tables[c.CUSTOMERS].set_index(c.CUSTOMER_ID)[
        [c.CONSENT_PERSONALIZATION, c.CONSENT_MARKETING]
    ]
    customers = trainer.customer_features[[c.CUSTOMER_ID, c.REGION, "rfm_segment", c.IS_MEMBER]].join(
        consent, on=c.CUSTOMER_ID
    )
    groups = group_popularity(trainer.orders, trainer.customer_features)
    return write_bundle(directory, model, catalog, customers, groups, trainer.rules)


def flat_params(settings: RecommenderSettings, rules: BusinessRules) -> dict[str, Any]:
    params = flatten(settings)
    params.update({f"business_rules.{key}": json.dumps(value) if isinstance(value, list | tuple | dict) else value
                   for key, value in rules.model_dump().items()})  # fmt: skip
    return params
