"""Where trained models are found: the MLflow registry, its `champion` alias, the bundles.

The store is MLflow's local embedded one by default (`sqlite:///mlflow.db` in the working
directory, artifacts in `./mlruns` beside it); `MLFLOW_TRACKING_URI` points a team at a
shared tracking server instead. `load_champion(name)` is the one way the service and the
batch CLI get a model: it downloads the champion's bundle and reads it with this code.
"""

from __future__ import annotations

import os

# bundles are small; a download progress bar on every load would bury stderr's one-line errors
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
import tempfile
from pathlib import Path
from typing import Final, Literal, overload

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from inference.pricing.model import PricingModel
from inference.recommender.answers import Recommendations
from inference.recommender.bundle import load_bundle
from storewise.errors import StorewiseError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
RECOMMENDER: Final = "storewise-recommender"
PRICING: Final = "storewise-pricing"
CHAMPION: Final = "champion"
TRAIN_HINT = {RECOMMENDER: "storewise train recommender", PRICING: "storewise train pricing"}


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def configure() -> MlflowClient:
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, registry_uri=uri)


def champion_version(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def download_bundle(model_uri: str) -> Path:
    """A registered model's data bundle, downloaded to a local directory.

    Serving and the CLI read bundles with their own code instead of `mlflow.pyfunc.load_model`:
    loading a pyfunc puts the model's snapshot of the code (its `code_paths`) in front of
    the installed packages, so the running service would end up calling its own code on
    classes from another version of it.
    """
    configure()
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=tempfile.mkdtemp(prefix="storewise-model-")
        )
    )
    bundle = local / "artifacts" / "bundle"
    if not bundle.is_dir():
        raise FileNotFoundError(f"{model_uri} has no bundle (artifacts/bundle): not a Storewise model")
    return bundle


def read_bundle(name: str, bundle: Path) -> Recommendations | PricingModel:
    """A bundle read as the model it holds."""
    if name == RECOMMENDER:
        return load_bundle(bundle)
    if name == PRICING:
        return PricingModel.load(bundle)
    raise StorewiseError(f"unknown model '{name}'; use one of {RECOMMENDER}, {PRICING}")


@overload
def load_champion(
    name: Literal["storewise-recommender"], model_uri: str | None = None
) -> Recommendations: ...
@overload
def load_champion(name: Literal["storewise-pricing"], model_uri: str | None = None) -> PricingModel: ...
def load_champion(name: str, model_uri: str | None = None) -> Recommendations | PricingModel:
    """The registered model `name` as it answers: its champion, or the version `model_uri`
    names (`models:/storewise-recommender/3`). A missing model is one clear error."""
    uri = model_uri or f"models:/{name}@{CHAMPION}"
    try:
        return read_bundle(name, download_bundle(uri))
    except (MlflowException, FileNotFoundError) as error:
        message = error.message if isinstance(error, MlflowException) else str(error)
        raise StorewiseError(
            f"cannot load {uri}: {message.splitlines()[0]} "
            f"(train one with `{TRAIN_HINT.get(name, 'storewise train')}` and promote it)"
        ) from None
