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
        rows = self.comparison[
            (self.comparison["model"] == model)
            & (self.comparison["protocol"] == protocol)
            & (self.comparison["metric"] == metric)
            & (self.comparison["k"] == k)
        ]
        return float(rows["value"].iloc[0])

    def best_other(
        self, protocol: str | None = None, exclude: tuple[str, ...] = ("hybrid", "lightfm", "cold_start")
    ) -> tuple[str, float]:
        """The best baseline or peer (LightFM alone is a component of the hybrid, not a baseline)."""
        protocol = protocol or self.primary_protocol
        rows = self.comparison[
            (self.comparison["protocol"] == protocol)
            & (self.comparison["metric"] == "ndcg")
            & (self.comparison["k"] == 10)
            & ~self.comparison["model"].isin(exclude)
        ]
        best = rows.loc[rows["value"].idxmax()]
        return str(best["model"]), float(best["value"])


def flat_params(settings: RecommenderSettings, rules: BusinessRules) -> dict[str, Any]:
    params = flatten(settings)
    params.update(
        {
            f"business_rules.{key}": json.dumps(value) if isinstance(value, list | tuple | dict) else value
            for key, value in rules.model_dump().items()
        }
    )
    return params
