"""One small shop, trained, registered and promoted in a temporary MLflow store, shared by
the in-process service tests and the real-server tests (both in the "server" xdist group,
so one worker trains it once)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from features.pipeline import build_features
from inference.registry import PRICING, RECOMMENDER
from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.writer import write_generated_shop
from storewise.shop import ShopPaths
from tests.helpers import fast_config
from tests.servers import TrainedShop
from training.pricing.train import train_pricing
from training.promotion import promote
from training.recommender.train import train_recommender


def promote_or_force(name: str, version: str | None) -> None:
    if not promote(name, version).promoted:
        promote(name, version, force=True)


@pytest.fixture(scope="session")
def trained_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedShop]:
    root = tmp_path_factory.mktemp("served")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    shop = ShopPaths(root / "shop")
    write_generated_shop(
        shop, generate_shop(GeneratorSettings(customers=10_000, products=40, days=180, seed=7))
    )
    config = fast_config(root)
    build_features(shop, config_dir=config)
    recommender = train_recommender(shop, config_dir=config)
    promote_or_force(RECOMMENDER, recommender.version)
    pricing = train_pricing(shop, config_dir=config, simulation_days=10)
    promote_or_force(PRICING, pricing.version)
    try:
        yield TrainedShop(root, shop, config, uri)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
