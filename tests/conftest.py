"""Shared fixtures: small generated shops and the real online-retail sample. Shared
constants and helpers live in `tests/helpers.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.demo.generate import GeneratedShop, generate_shop
from intake.demo.writer import write_generated_shop
from storewise.shop import ShopPaths
from tests.helpers import ONLINE_RETAIL_SAMPLE, SMALL


@pytest.fixture(scope="session")
def small_generated() -> GeneratedShop:
    return generate_shop(SMALL)


@pytest.fixture(scope="session")
def small_shop(tmp_path_factory: pytest.TempPathFactory, small_generated: GeneratedShop) -> ShopPaths:
    """A written small demo shop. Session-wide: tests must not modify it."""
    shop = ShopPaths(tmp_path_factory.mktemp("small") / "shop")
    write_generated_shop(shop, small_generated)
    return shop


@pytest.fixture(scope="session")
def online_retail_sample() -> Path:
    if not ONLINE_RETAIL_SAMPLE.exists():
        pytest.fail(f"the shared sample is missing: {ONLINE_RETAIL_SAMPLE}")
    return ONLINE_RETAIL_SAMPLE


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A temporary MLflow tracking store (SQLite, artifacts beside it)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
