"""`features build` end to end: the demo shop, the real sample, no-op rebuilds, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from features.pipeline import Outputs, build_features
from intake.importers.common import Consent, write_import
from intake.importers.online_retail import import_online_retail
from storewise import columns as c
from storewise.config import CONFIG_DIR
from storewise.errors import ConfigError, DataError
from storewise.shop import ShopPaths


@pytest.fixture
def demo_copy(small_shop: ShopPaths, tmp_path: Path) -> ShopPaths:
    shutil.copytree(small_shop.root, tmp_path / "shop")
    return ShopPaths(tmp_path / "shop")


def test_demo_shop_builds_every_output_with_a_manifest(demo_copy: ShopPaths) -> None:
    result = build_features(demo_copy)
    assert result.rebuilt
    for name in vars(Outputs).values():
        if isinstance(name, str) and name.endswith(".parquet"):
            assert (demo_copy.features / name).exists(), name
    manifest = result.manifest
    assert len(str(manifest["input_hash"])) == 64
    counts = manifest["row_counts"]
    assert isinstance(counts, dict)
    assert counts[Outputs.CUSTOMER_FEATURES] == len(pd.read_parquet(demo_copy.table(c.CUSTOMERS)))
    assert manifest["config"]["recommender.interactions.purchase"] == 8.0  # type: ignore[index]
    interactions = pd.read_parquet(demo_copy.features / Outputs.INTERACTIONS)
    customers = pd.read_parquet(demo_copy.table(c.CUSTOMERS)).set_index(c.CUSTOMER_ID)
    assert customers.loc[interactions[c.CUSTOMER_ID], c.CONSENT_PERSONALIZATION].all()
    funnel = pd.read_parquet(demo_copy.features / Outputs.JOURNEY)
    assert (funnel.loc[funnel["segment"] == "all", "viewed"] > 0).all()


def test_unchanged_inputs_are_not_rebuilt_and_changed_ones_are(demo_copy: ShopPaths, tmp_path: Path) -> None:
    first = build_features(demo_copy)
    again = build_features(demo_copy)
    assert not again.rebuilt
    assert again.manifest["input_hash"] == first.manifest["input_hash"]
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    text = (config / "recommender.yaml").read_text().replace("half_life_days: 180", "half_life_days: 90")
    (config / "recommender.yaml").write_text(text)
    changed = build_features(demo_copy, config_dir=config)
    assert changed.rebuilt
    assert changed.manifest["input_hash"] != first.manifest["input_hash"]


def test_real_sample_builds(tmp_path: Path, online_retail_sample: Path) -> None:
    shop = ShopPaths(tmp_path / "retail")
    write_import(shop, import_online_retail(online_retail_sample, consent=Consent.PERSONALIZATION))
    result = build_features(shop)
    assert any("journey funnel is empty" in note for note in result.notes)
    demand = pd.read_parquet(shop.features / Outputs.DEMAND)
    orders = pd.read_parquet(shop.table(c.ORDERS))
    assert demand["units"].sum() == orders.loc[~orders[c.RETURNED], c.QUANTITY].sum()
    rfm = pd.read_parquet(shop.features / Outputs.RFM)
    assert len(rfm) == orders.loc[~orders[c.RETURNED], c.CUSTOMER_ID].nunique()


def test_a_shop_that_fails_check_is_refused_with_one_message(demo_copy: ShopPaths) -> None:
    products = pd.read_parquet(demo_copy.table(c.PRODUCTS))
    products.loc[0, c.LIST_PRICE] = -3.0
    products.to_parquet(demo_copy.table(c.PRODUCTS), index=False)
    with pytest.raises(DataError) as caught:
        build_features(demo_copy)
    assert caught.value.message.startswith(
        f"{demo_copy.raw}: fails `storewise data check` (1 problem(s), first: "
    )
    assert "products.list_price" in caught.value.message
    assert not demo_copy.features.exists()


def test_a_malformed_config_names_the_file_and_key(demo_copy: ShopPaths, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "features.yaml").write_text("clusters:\n  colour: blue\n")
    with pytest.raises(ConfigError) as caught:
        build_features(demo_copy, config_dir=config)
    assert (
        caught.value.message == f"{config / 'features.yaml'}: clusters.colour: Extra inputs are not permitted"
    )
    (config / "features.yaml").write_text("clusters:\n  min_clusters: 6\n  max_clusters: 3\n")
    with pytest.raises(
        ConfigError, match="clusters: Value error, max_clusters must be at least min_clusters"
    ):
        build_features(demo_copy, config_dir=config)
    (config / "features.yaml").write_text("rfm: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        build_features(demo_copy, config_dir=config)
