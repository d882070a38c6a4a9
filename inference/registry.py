"""Where trained models are found: the MLflow registry, its `champion` alias, the bundles.

The store is MLflow's local embedded one by default (`sqlite:///mlflow.db` in the working
directory, artifacts in `./mlruns` beside it); `MLFLOW_TRACKING_URI` points a team at a
shared tracking server instead. `load_champion(name)` is the one way the service and the
batch CLI get a model: it downloads the champion's bundle and reads it with this code (the
service keeps one local copy per version; every other caller deletes its download).
"""

from __future__ import annotations

import os

# bundles are small; a download progress bar on every load would bury stderr's one-line errors
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
import hashlib
import re
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


class TrackingUnavailableError(StorewiseError):
    """The tracking server could not say (down, unreachable, failing)."""


# a registry that is there says "not found"; anything else (a connection refused, a
# timeout, a server error) is the tracking server being unreachable
NOT_THERE = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def find_champion(client: MlflowClient, name: str) -> str | None:
    """The champion's version, None if the model has none; `TrackingUnavailableError` if the
    tracking server cannot say (unlike `champion_version`, which takes both as None)."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as error:
        if error.error_code in NOT_THERE:
            return None
        raise TrackingUnavailableError(str(error).splitlines()[0][:300]) from None
    except OSError as error:  # a sqlite file that cannot be opened, a socket error
        raise TrackingUnavailableError(str(error)[:300]) from None


def champion_version(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def download_bundle(model_uri: str, into: Path) -> Path:
    """A registered model's data bundle, downloaded under the directory `into`.

    Serving and the CLI read bundles with their own code instead of `mlflow.pyfunc.load_model`:
    loading a pyfunc puts the model's snapshot of the code (its `code_paths`) in front of
    the installed packages, so the running service would end up calling its own code on
    classes from another version of it.
    """
    configure()
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(into)))
    bundle = local / "artifacts" / "bundle"
    if not bundle.is_dir():
        raise FileNotFoundError(f"{model_uri} has no bundle (artifacts/bundle): not a Storewise model")
    return bundle


VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


def cached_bundle(model_uri: str, cache: Path) -> Path:
    """The bundle of a registered model version, downloaded once into `cache` and reused:
    `<cache>/<store>/<name>/<version>/` (a version's files never change; `<store>` tells
    tracking stores apart). A download goes to a temporary directory beside it and is
    renamed into place whole, so a crash never leaves a half copy that looks complete."""
    match = VERSION_URI.match(model_uri)
    if match is None:
        raise StorewiseError(f"a cached model needs a version URI (models:/NAME/VERSION), not {model_uri}")
    store = hashlib.sha256(tracking_uri().encode()).hexdigest()[:12]
    final = cache / store / match["name"] / match["version"]
    if not (final / "artifacts" / "bundle").is_dir():
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(
            prefix=".download-", dir=final.parent, ignore_cleanup_errors=True
        ) as staging:
            bundle = download_bundle(model_uri, Path(staging))
            try:
                bundle.parent.parent.rename(final)
            except OSError:  # another worker put the same version in place first
                if not (final / "artifacts" / "bundle").is_dir():
                    raise
    return final / "artifacts" / "bundle"


def read_bundle(name: str, bundle: Path) -> Recommendations | PricingModel:
    """A bundle read as the model it holds."""
    if name == RECOMMENDER:
        return load_bundle(bundle)
    if name == PRICING:
        return PricingModel.load(bundle)
    raise StorewiseError(f"unknown model '{name}'; use one of {RECOMMENDER}, {PRICING}")


@overload
def load_champion(
    name: Literal["storewise-recommender"], model_uri: str | None = None, cache: Path | None = None
) -> Recommendations: ...
@overload
def load_champion(
    name: Literal["storewise-pricing"], model_uri: str | None = None, cache: Path | None = None
) -> PricingModel: ...
def load_champion(
    name: str, model_uri: str | None = None, cache: Path | None = None
) -> Recommendations | PricingModel:
    """The registered model `name` as it answers: its champion, or the version `model_uri`
    names (`models:/storewise-recommender/3`). A missing model is one clear error.

    With `cache` (the service), a version is downloaded once and kept there (`cached_bundle`,
    `model_uri` must name the version); without, the download is read and deleted."""
    uri = model_uri or f"models:/{name}@{CHAMPION}"
    try:
        if cache is not None:
            return read_bundle(name, cached_bundle(uri, cache))
        with tempfile.TemporaryDirectory(prefix="storewise-model-") as into:
            return read_bundle(name, download_bundle(uri, Path(into)))
    except (MlflowException, FileNotFoundError) as error:
        message = error.message if isinstance(error, MlflowException) else str(error)
        raise StorewiseError(
            f"cannot load {uri}: {message.splitlines()[0]} "
            f"(train one with `{TRAIN_HINT.get(name, 'storewise train')}` and promote it)"
        ) from None
