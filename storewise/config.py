"""Loading YAML config files into typed, validated settings objects.

A typo in a key or a value out of range fails at load, naming the file, the key and the
reason, so a bad config never reaches a model or a running service.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from storewise.errors import ConfigError

# `STOREWISE_CONFIG_DIR` points every verb and the service at another folder of settings,
# e.g. a data scientist's variant of recommender.yaml for a second training run.
CONFIG_DIR = Path(
    os.environ.get("STOREWISE_CONFIG_DIR") or Path(__file__).resolve().parent.parent / "config"
).resolve()

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every settings model: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: 'key.path: reason'."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"{key}: {problem['msg']}")
    return "; ".join(lines)


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", path=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"not valid YAML{where}", path=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of keys to values", path=path)
    return data


def load_settings(model: type[SettingsT], path: Path) -> SettingsT:
    """Read `path` and validate it as `model`, or raise ConfigError naming file and key."""
    data = load_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error), path=path) from None


def flatten(settings: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Flatten nested settings to dotted keys, the form MLflow params take."""
    flat: dict[str, Any] = {}
    for key, value in settings.model_dump().items():
        _flatten_into(flat, f"{prefix}{key}", value)
    return flat


def _flatten_into(flat: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, dict):
        for sub_key, sub_value in value.items():
            _flatten_into(flat, f"{key}.{sub_key}", sub_value)
    else:
        flat[key] = value
