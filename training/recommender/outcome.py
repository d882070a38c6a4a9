"""What a recommender training run produced: the side-by-side comparison, the learning
curve, the blends, the timings and the bundle; and the run's flattened settings. Shared by
the trainer (`train.py`) and the MLflow logging (`mlflow_run.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from storewise.config import flatten
from storewise.settings import BusinessRules, RecommenderSettings
from training.recommender.blend import TunedBlend
from training.recommender.fallback import Fallback
from training.recommender.rerank import RerankChoice
from training.recommender.uncertainty import Interval

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
    # protocol, model, mean, low, high: the hybrid's test NDCG@10 minus each model's
    intervals: pd.DataFrame = field(default_factory=pd.DataFrame)
    per_customer: pd.DataFrame = field(default_factory=pd.DataFrame)  # each test customer's NDCG@10
    validation: dict[str, TunedBlend] = field(default_factory=dict)  # what the folds said per protocol
    # catalogue items left out of the test weeks: first seen after their start (not launched)
    unlaunched_items: int = 0
    # on the latest fold, per protocol whose blend kept LightFM: that blend minus the one tuned
    # without it (LightFM is fitted on the other folds only if one is clearly above zero)
    lightfm_screen: dict[str, Interval] = field(default_factory=dict)
    # the latest two folds (`LightFmChoice.confirmation`; None: not asked)
    lightfm_confirmation: dict[str, Interval] | None = None
    # per protocol: whether the learned reranker replaced the blend, and the held-out evidence
    rerank: dict[str, RerankChoice] = field(default_factory=dict)
    # per protocol answered by one component alone, as the test weeks decided (`fallback.Fallback`)
    fallbacks: dict[str, Fallback] = field(default_factory=dict)
    tracking_uri: str | None = None  # the store the run was written to (with run_id, version)

    def value(self, model: str, protocol: str | None = None, metric: str = "ndcg", k: int = 10) -> float:
        protocol = protocol or self.primary_protocol
        rows = self.comparison[
            (self.comparison["model"] == model)
            & (self.comparison["protocol"] == protocol)
            & (self.comparison["metric"] == metric)
            & (self.comparison["k"] == k)
        ]
        return float(rows["value"].iloc[0])

    def best_other(
        self, protocol: str | None = None, exclude: tuple[str, ...] = ("hybrid", "cold_start")
    ) -> tuple[str, float]:
        """The best baseline or peer on the test weeks (LightFM alone included: when the
        hybrid does not blend it, it is one more peer)."""
        protocol = protocol or self.primary_protocol
        rows = self.comparison[
            (self.comparison["protocol"] == protocol)
            & (self.comparison["metric"] == "ndcg")
            & (self.comparison["k"] == 10)
            & ~self.comparison["model"].isin(exclude)
        ]
        best = rows.loc[rows["value"].idxmax()]
        return str(best["model"]), float(best["value"])

    def interval(self, model: str, protocol: str | None = None) -> Interval:
        """The hybrid's test NDCG@10 minus `model`'s, with its paired bootstrap interval."""
        protocol = protocol or self.primary_protocol
        row = self.intervals[(self.intervals["protocol"] == protocol) & (self.intervals["model"] == model)]
        return Interval(float(row["mean"].iloc[0]), float(row["low"].iloc[0]), float(row["high"].iloc[0]))


def flat_params(settings: RecommenderSettings, rules: BusinessRules) -> dict[str, Any]:
    params = flatten(settings)
    params.update(
        {
            f"business_rules.{key}": json.dumps(value) if isinstance(value, list | tuple | dict) else value
            for key, value in rules.model_dump().items()
        }
    )
    return params
