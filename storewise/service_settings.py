"""The service's settings, read from the environment once at start and checked there.

Every knob of a running service is an environment variable (BentoML starts the workers, so
there is no command line to read): a bad value stops the start with one line naming the
variable and what it must be, never a traceback from deep inside a worker. `storewise
serve` checks them before it starts BentoML; a worker checks them again when it imports
the service. The defaults live here and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from storewise.errors import StorewiseError
from storewise.shop import DEFAULT_SHOP_DIR

PREFIX = "STOREWISE_"
ADMIN_TOKEN_MIN_LENGTH = 16


class ServiceSettingsError(StorewiseError):
    """A service setting in the environment is wrong; the message names the variable."""


class ServiceSettings(BaseModel):
    """One field per `STOREWISE_<FIELD>` variable (upper case)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    shop_dir: Path = DEFAULT_SHOP_DIR
    workers: int = Field(2, ge=1, le=64, description="worker processes")
    reload_seconds: float = Field(
        15, ge=1, le=86_400, description="how often a worker looks for a new champion"
    )
    # the credential of the admin endpoints (/reload, /noop); unset: they are refused
    admin_token: str | None = None
    # price audit and feedback logs: rotate by size ("size": at log_max_mb) or each UTC day ("day")
    log_rotate: Literal["size", "day"] = "size"
    log_max_mb: float = Field(100, gt=0, le=100_000)
    # rotated files kept per log (all workers together); the oldest beyond this are deleted
    log_keep: int = Field(20, ge=0, le=100_000)
    # one local copy per model version, shared by the workers and reused across reloads
    model_cache: Path = Path.home() / ".cache" / "storewise" / "models"
    # seconds a tracking-server request may take during a reload check (then one retry)
    tracking_timeout: float = Field(5, gt=0, le=600)
    bentoml_fix: Literal["0", "1"] = "1"

    @field_validator("admin_token")
    @classmethod
    def _usable_token(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if len(value) < ADMIN_TOKEN_MIN_LENGTH or any(char.isspace() for char in value):
            raise ValueError(
                f"must be at least {ADMIN_TOKEN_MIN_LENGTH} characters without spaces "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`), or unset"
            )
        return value


def variable(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def require_shop(settings: ServiceSettings) -> None:
    """`STOREWISE_SHOP_DIR` must be a shop (checked when a worker starts, not when the
    service module is imported, so the module loads anywhere)."""
    if not (settings.shop_dir / "shop.yaml").is_file():
        raise ServiceSettingsError(
            f"{variable('shop_dir')}='{settings.shop_dir}': not a shop (no shop.yaml); "
            "run `storewise data generate` or `storewise data import`"
        )


def read_service_settings(environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """The settings from `environ` (default: this process's environment); the first bad
    variable is one `ServiceSettingsError` naming it, the value given and what it must be."""
    environ = os.environ if environ is None else environ
    given = {
        name: environ[variable(name)] for name in ServiceSettings.model_fields if variable(name) in environ
    }
    try:
        return ServiceSettings.model_validate(given)
    except ValidationError as error:
        problem = error.errors()[0]
        name = str(problem["loc"][0]) if problem["loc"] else "?"
        value = given.get(name, "")
        shown = "(hidden)" if name == "admin_token" else repr(value)
        reason = problem["msg"].removeprefix("Value error, ")
        raise ServiceSettingsError(f"{variable(name)}={shown}: {reason}") from None


def model_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The service's model cache (`STOREWISE_MODEL_CACHE` or its default), for the CLI."""
    environ = os.environ if environ is None else environ
    name = variable("model_cache")
    return read_service_settings({name: environ[name]} if name in environ else {}).model_cache
