"""What one recommender training run works from: the shop's tables and features, read once,
the typed settings, and how each model of the run is made from them (the data at a cutoff,
the evaluation protocols, LightFM, the hybrid, the peers)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

from features.interactions import with_dismissals
from features.pipeline import Outputs, fresh_manifest, load_output
from inference.recommender.scoring import HybridModel
from intake.tables import read_tables
from storewise import columns as c
from storewise.config import CONFIG_DIR
from storewise.settings import (
    BusinessRules,
    RecommenderSettings,
    load_business_rules,
    load_recommender_settings,
)
from storewise.shop import ShopPaths
from training.recommender import models as m
from training.recommender.data import TrainData, Truth, build_train_data, prepare_tables
from training.recommender.evaluate import PROTOCOLS, Protocol, evaluate, make_protocol
from training.recommender.hybrid import fit_hybrid
from training.recommender.outcome import PRIMARY_METRIC

log = logging.getLogger(__name__)


def peers(n_items: int, settings: RecommenderSettings) -> list[m.Recommender]:
    """Baselines and the peers a data scientist would try, each with counts and bought/not-bought."""
    components = settings.components
    models: list[m.Recommender] = [
        m.Popularity(),
        m.Popularity(trending=True),
        m.Cooccurrence(settings.peers.cooccurrence_neighbours),
        m.BuyAgain(),
        m.Repurchase(settings.repurchase, settings.evaluation.test_days),
        m.TifuKnn(settings.tifu),
    ]
    with_ease = m.Ease.fits(n_items, components)
    if not with_ease:
        log.warning(
            "EASE peers left out: %s items is above components.max_ease_items (%s)",
            f"{n_items:,}",
            f"{components.max_ease_items:,}",
        )
    for binary in (True, False):
        suffix = "binary" if binary else "counts"
        variants: list[m.Recommender] = [
            m.ItemKnnBm25(components, source="purchases", binary=binary),
            m.Als(settings.peers.als, components.threads, source="purchases", binary=binary),
        ]
        if with_ease:
            variants.append(m.Ease(components, "purchases", binary=binary))
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
            # validated like the file: a CLI override out of range fails the same way
            settings = RecommenderSettings.model_validate(
                {
                    **settings.model_dump(by_alias=True),
                    "evaluation": {**settings.evaluation.model_dump(), **evaluation},
                }
            )
        self.settings = settings
        self.rules = load_business_rules(config_dir)
        self.config_dir = config_dir
        manifest = fresh_manifest(shop, config_dir)
        self.data_hash = str(manifest["input_hash"])
        self.tables = with_dismissals(read_tables(shop), shop)  # "not interested" counts against an item
        self.item_features = load_output(shop, Outputs.ITEM_FEATURES)
        self.customer_features = load_output(shop, Outputs.CUSTOMER_FEATURES)
        self.prepared = prepare_tables(self.tables)
        # ids as plain strings: the truth of every fold and the hybrid's histories select
        # orders by id many times (pandas' Arrow strings took 6.5 s of `isin` on the large
        # demo shop)
        self.orders = self.prepared.tables[c.ORDERS]
        self.customers = self.prepared.tables[c.CUSTOMERS]
        self.seconds: dict[str, float] = {}

    def data_at(self, cutoff: pd.Timestamp, *, listed_only: bool = False) -> TrainData:
        """The data at `cutoff` (`listed_only`: over the catalogue as it was then, see
        `training.recommender.data`)."""
        evaluation, components = self.settings.evaluation, self.settings.components
        return build_train_data(
            self.prepared,
            self.item_features,
            self.settings.interactions,
            cutoff,
            trending_days=evaluation.trending_days,
            repeat_half_life_days=components.repeat_half_life_days,
            listed_only=listed_only,
        )

    def protocols(self, data: TrainData) -> dict[str, Protocol]:
        mask = one_time_mask(data, self.tables[c.PRODUCTS], self.rules)
        return {name: make_protocol(name, data, mask) for name in PROTOCOLS}

    def lightfm(self, epochs: int, overrides: dict[str, Any] | None = None) -> m.LightFmHybrid:
        """LightFM with the configured settings, `overrides` (a search trial) applied."""
        settings = self.settings.lightfm
        if overrides:
            settings = type(settings).model_validate({**settings.model_dump(), **overrides})
        return m.LightFmHybrid(settings, epochs)

    def hybrid(
        self,
        data: TrainData,
        lightfm: m.LightFmHybrid | None,
        *,
        components: Collection[str] | None = None,
        horizon_days: float | None = None,
        users: np.ndarray | None = None,
        fitted: Mapping[str, sp.csr_matrix] | None = None,
    ) -> HybridModel:
        """The hybrid's `components` fitted on `data` (see `fit_hybrid`)."""
        return fit_hybrid(
            data,
            self.orders,
            lightfm,
            self.settings,
            components=components,
            horizon_days=horizon_days,
            users=users,
            codes=self.prepared.codes,
            fitted=fitted,
        )

    def early_stopping(
        self,
        data: TrainData,
        truth: Truth,
        protocol: Protocol,
        overrides: dict[str, Any] | None = None,
        progress: Callable[[int, bool], None] | None = None,
    ) -> tuple[int, float, list[tuple[int, float]], m.LightFmHybrid]:
        """LightFM trained epoch by epoch until validation NDCG@10 stops improving for
        `patience` epochs: (best epoch, its value, the learning curve, the model with its
        best epoch's representations). `progress(best epoch so far, stopped)` is told after
        every epoch, and once more when it has stopped (`background.BestEpoch`)."""
        settings = self.settings.lightfm
        curve: list[tuple[int, float]] = []
        best: dict[str, Any] = {"epoch": 0, "value": -1.0}
        bar = tqdm(total=settings.max_epochs, desc="lightfm epochs", unit="epoch", leave=False)

        def on_epoch(epoch: int, model: m.LightFmHybrid) -> bool:
            value = evaluate(model, data, truth, protocol)[PRIMARY_METRIC]
            curve.append((epoch, value))
            if value > best["value"]:
                best.update(epoch=epoch, value=value, representations=model.representations())
            bar.update(1)
            bar.set_postfix_str(
                f"validation {PRIMARY_METRIC} {value:.4f} (best {best['value']:.4f}, epoch {best['epoch']})"
            )
            if progress is not None:
                progress(best["epoch"], False)
            return epoch - best["epoch"] >= settings.patience

        try:
            model = self.lightfm(settings.max_epochs, overrides).fit(data, on_epoch=on_epoch)
        finally:
            if progress is not None:  # stopped, even by an error: a follower never waits for more
                progress(best["epoch"], True)
        bar.close()
        model.restore(best["representations"], best["epoch"])
        return best["epoch"], best["value"], curve, model
