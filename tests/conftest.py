"""Shared fixtures: small generated shops and the real online-retail sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.demo.generate import GeneratedShop, GeneratorSettings, generate_shop
from intake.demo.writer import write_generated_shop
from storewise.shop import ShopPaths

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
ONLINE_RETAIL_SAMPLE = SHARED_DATA / "online-retail-sample.csv.gz"

# Small enough to generate in a fraction of a second, big enough to have every quirk.
SMALL = GeneratorSettings(customers=3_000, products=60, days=120, seed=7)


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


def fast_config(tmp_path: Path, **recommender_overrides: object) -> Path:
    """A copy of config/ with a recommender small and deterministic enough for tests."""
    import shutil

    import yaml

    from storewise.config import CONFIG_DIR

    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    settings = yaml.safe_load((target / "recommender.yaml").read_text())
    settings["lightfm"].update({"components": 16, "max_epochs": 8, "patience": 2, "threads": 1})
    settings["evaluation"].update({"validation_folds": 1})
    settings["blend"].update({"grid": [0, 0.5, 1.0], "passes": 1})
    for key, value in recommender_overrides.items():
        section, _, name = key.partition(".")
        settings[section][name] = value
    (target / "recommender.yaml").write_text(yaml.safe_dump(settings))
    return target


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A temporary MLflow tracking store (SQLite, artifacts beside it)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
