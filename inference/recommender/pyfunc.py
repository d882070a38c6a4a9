"""The recommender as an MLflow pyfunc model: what is logged and registered.

`load_context` reads the bundle (`inference/recommender/bundle.py`); `predict` takes rows of
(customer_id, k) and returns the top k per customer, so the model is usable from any MLflow
client as well as from the service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from inference.recommender.batch import batch_top_k
from inference.recommender.bundle import load_bundle
from storewise import columns as c

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
# what `log_model` is given: the file that makes the model (models from code), not a pickle
MODEL_CODE = str(Path(__file__).with_name("pyfunc_model.py"))


class RecommenderModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    def load_context(self, context: Any) -> None:
        self.recommendations = load_bundle(Path(context.artifacts["bundle"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return batch_top_k(
            self.recommendations,
            model_input[c.CUSTOMER_ID].astype(str).tolist(),
            model_input["k"].astype(np.int64).tolist(),
        )
