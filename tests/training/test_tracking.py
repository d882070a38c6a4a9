"""What a logged model records about its environment, and that logging it warns of nothing
a user cannot act on (`make demo` prints every such warning to whoever runs it)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import mlflow
import yaml

from training.tracking import ensure_experiment, model_environment

MODEL_CODE = """
import mlflow


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[str], params=None) -> list[str]:
        return model_input


mlflow.models.set_model(Echo())
"""


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def log_echo(tmp_path: Path, **environment: object) -> tuple[str, list[str]]:
    """Log a tiny model from code; its URI and the warnings MLflow's environment code logged."""
    code = tmp_path / "echo.py"
    code.write_text(MODEL_CODE, encoding="utf-8")
    handler = Collected()
    logger = logging.getLogger("mlflow.utils.environment")
    logger.addHandler(handler)
    try:
        with mlflow.start_run(experiment_id=ensure_experiment("environment-test")):
            info = mlflow.pyfunc.log_model(name="model", python_model=str(code), **environment)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    return info.model_uri, handler.messages


def test_a_model_logged_with_its_environment_records_it_and_warns_of_nothing(
    tmp_path: Path, mlflow_store: str
) -> None:
    requirements = ["pandas==2.2.3", "pyyaml"]
    uri, warnings = log_echo(tmp_path, conda_env=model_environment(requirements))
    assert warnings == []
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "got")))
    conda = yaml.safe_load((local / "conda.yaml").read_text(encoding="utf-8"))
    assert "pip" in conda["dependencies"]
    pip = next(entry["pip"] for entry in conda["dependencies"] if isinstance(entry, dict))
    written = (local / "requirements.txt").read_text(encoding="utf-8").splitlines()
    for requirement in requirements:
        assert requirement in pip
        assert requirement in written
    assert any(line.startswith("mlflow") for line in written)  # MLflow adds its own pin
    if importlib.util.find_spec("pip") is None:
        # the cause, in this environment (uv installs no pip): pip requirements alone warn
        _, warned = log_echo(tmp_path, pip_requirements=requirements)
        assert any("pip version" in message for message in warned)
