"""The recommender as an MLflow pyfunc model: what is logged, registered and served.

The artifacts are the hybrid model's arrays, the catalogue, the personalizable customers
(pseudonymous ids, region, segment, consent; nothing else), popularity by group and the
business rules in force at training. `load_context` rebuilds `Recommendations`;
`predict` takes rows of (customer_id, k) and returns the top k per customer, so the model
is usable from any MLflow client as well as from the service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from storewise import columns as c
from storewise.settings import BusinessRules
from training.recommender.hybrid import HybridModel
from training.recommender.recommend import Answer, Purchased, Recommendations, normalize_customer_id

INPUT_SCHEMA = Schema([ColSpec("string", c.CUSTOMER_ID), ColSpec("long", "k")])
OUTPUT_SCHEMA = Schema(
    [
        ColSpec("string", c.CUSTOMER_ID),
        ColSpec("string", c.ITEM_ID),
        ColSpec("long", "rank"),
        ColSpec("double", "score"),
        ColSpec("string", "reason"),
        ColSpec("string", "source"),
    ]
)
SIGNATURE = ModelSignature(inputs=INPUT_SCHEMA, outputs=OUTPUT_SCHEMA)


def write_bundle(directory: Path, model: HybridModel, catalog: pd.DataFrame, customers: pd.DataFrame,
                 groups: pd.DataFrame, rules: BusinessRules) -> Path:  # fmt: skip
    """Everything `load_bundle` needs, in one directory."""
    model.save(directory / "hybrid")
    catalog.to_parquet(directory / "catalog.parquet", index=False)
    customers.to_parquet(directory / "customers.parquet", index=False)
    groups.to_parquet(directory / "group_popularity.parquet", index=False)
    (directory / "business_rules.json").write_text(rules.model_dump_json(indent=2), encoding="utf-8")
    return directory


def load_bundle(directory: Path) -> Recommendations:
    rules = BusinessRules.model_validate(
        json.loads((directory / "business_rules.json").read_text(encoding="utf-8"))
    )
    return Recommendations(
        HybridModel.load(directory / "hybrid"),
        pd.read_parquet(directory / "catalog.parquet"),
        pd.read_parquet(directory / "customers.parquet"),
        pd.read_parquet(directory / "group_popularity.parquet"),
        rules,
    )


class RecommenderModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    def load_context(self, context: Any) -> None:
        self.recommendations = load_bundle(Path(context.artifacts["bundle"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return batch_top_k(self.recommendations, model_input[c.CUSTOMER_ID].astype(str).tolist(),
                           model_input["k"].astype(np.int64).tolist())  # fmt: skip


def batch_top_k(
    recommendations: Recommendations,
    customer_ids: list[str],
    ks: list[int],
    *,
    purchased: Purchased = "exclude",
) -> pd.DataFrame:
    """Top k per customer (customers sharing a k are scored together in batches)."""
    rows = []
    by_k: dict[int, list[int]] = {}
    for position, k in enumerate(ks):
        by_k.setdefault(int(k), []).append(position)
    answers: dict[int, Answer] = {}
    for k, positions in by_k.items():
        for position, answer in zip(
            positions,
            recommendations.recommend_many([customer_ids[p] for p in positions], k, purchased=purchased),
            strict=True,
        ):
            answers[position] = answer
    for position, customer_id in enumerate(customer_ids):
        answer = answers[position]
        for rank, item in enumerate(answer.items, start=1):
            rows.append(
                (
                    normalize_customer_id(customer_id),
                    item.item_id,
                    rank,
                    item.score,
                    item.reason,
                    answer.source,
                )
            )
    return pd.DataFrame(rows, columns=[c.CUSTOMER_ID, c.ITEM_ID, "rank", "score", "reason", "source"]).astype(
        {"rank": "int64", "score": "float64"}
    )
