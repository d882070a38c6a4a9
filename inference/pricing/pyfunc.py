"""The pricing model as an MLflow pyfunc: item ids in, base prices with reasons out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from inference.pricing.model import PricingModel
from storewise import columns as c

# what `log_model` is given: the file that makes the model (models from code), not a pickle
MODEL_CODE = str(Path(__file__).with_name("pyfunc_model.py"))


class PricingPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    def load_context(self, context: Any) -> None:
        self.model = PricingModel.load(Path(context.artifacts["bundle"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        ids = [item for item in model_input[c.ITEM_ID].astype(str) if self.model.knows(item)]
        decided = self.model.price(ids)
        return pd.DataFrame(
            {
                c.ITEM_ID: decided["item_id"],
                "price": decided["price"],
                "previous_price": decided["previous_price"],
                "reason": decided["reason"],
            }
        )
