"""MLflow set-up shared by the recommender and pricing trainers.

The store is MLflow's local embedded one by default (`sqlite:///mlflow.db` in the working
directory, artifacts in `./mlruns` beside it); `MLFLOW_TRACKING_URI` points a team at a
shared tracking server instead. Experiments created here put their artifacts next to a
SQLite store, so a temporary store (tests) never writes into the repository.
"""

from __future__ import annotations

import os
import platform

# bundles are small; a download progress bar on every load would bury stderr's one-line errors
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
RECOMMENDER = "storewise-recommender"
PRICING = "storewise-pricing"
CHAMPION = "champion"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def configure() -> MlflowClient:
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, registry_uri=uri)


def artifact_root(uri: str) -> str | None:
    """For a SQLite store, `mlruns/` beside the database file; otherwise the server decides."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    database = Path(uri.removeprefix("sqlite:///")).resolve()
    return (database.parent / "mlruns").as_uri()


def ensure_experiment(name: str) -> str:
    client = configure()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=artifact_root(tracking_uri())))
    except MlflowException:
        # another trainer (a colleague's process on a shared server) created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def environment() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    packages = (
        "rectools-lightfm",
        "implicit",
        "mlflow",
        "bentoml",
        "numpy",
        "pandas",
        "scikit-learn",
        "scipy",
    )
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def download_bundle(model_uri: str) -> Path:
    """A registered model's data bundle, downloaded to a local directory.

    Serving and the CLI read bundles with their own code instead of `mlflow.pyfunc.load_model`:
    loading a pyfunc puts the model's snapshot of `storewise/`, `features/` and `training/`
    (its `code_paths`) in front of the installed packages, so the running service would end
    up calling its own code on classes from another version of it.
    """
    import tempfile

    from mlflow.artifacts import download_artifacts

    configure()
    local = Path(
        download_artifacts(artifact_uri=model_uri, dst_path=tempfile.mkdtemp(prefix="storewise-model-"))
    )
    bundle = local / "artifacts" / "bundle"
    if not bundle.is_dir():
        raise FileNotFoundError(f"{model_uri} has no bundle (artifacts/bundle): not a Storewise model")
    return bundle
