"""The pricing model as an MLflow pyfunc: item ids in, base prices with reasons out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from storewise import columns as c
from storewise.errors import StorewiseError
from training.pricing.model import PricingModel
from training.tracking import download_bundle


class PricingPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    def load_context(self, context: Any) -> None:
        self.model = PricingModel.load(Path(context.artifacts["bundle"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        ids = [item for item in model_input[c.ITEM_ID].astype(str) if self.model.knows(item)]
        decided = self.model.price(ids)
        return pd.DataFrame({c.ITEM_ID: decided["item_id"], "price": decided["price"], "previous_price": decided["previous_price"],
                             "reason": decided["reason"]})  # fmt: skip


def load_pricing_model(model_uri: str) -> PricingModel:
    """The registered pricing model's bundle, read by this code (see tracking.download_bundle)."""
    try:
        return PricingModel.load(download_bundle(model_uri))
    except (MlflowException, FileNotFoundError) as error:
        message = error.message if isinstance(error, MlflowException) else str(error)
        raise StorewiseError(f"cannot load {model_uri}: {message.splitlines()[0]} "
                             "(train one with `storewise train pricing` and promote it)") from None  # fmt: skip
