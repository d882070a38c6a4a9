"""MLflow set-up shared by the recommender and pricing trainers: experiments and the
environment a run records. Experiments created here put their artifacts next to a SQLite
store, so a temporary store (tests) never writes into the repository."""

from __future__ import annotations

import platform
from pathlib import Path
from urllib.parse import urlparse

from mlflow.exceptions import MlflowException

from inference.registry import configure, tracking_uri


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


def model_environment(requirements: list[str]) -> dict[str, object]:
    """The conda environment a logged model records, written out rather than left to MLflow:
    this Python, pip, and the model's pip `requirements`.

    Given only pip requirements, MLflow builds this itself and looks up the installed pip's
    version to pin it; a uv environment has no pip, so every log printed "Failed to resolve
    installed pip version", a warning nobody running `make demo` can act on. pip is listed
    without a version, which is what MLflow falls back to as well.
    """
    return {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={platform.python_version()}", "pip", {"pip": list(requirements)}],
    }


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
