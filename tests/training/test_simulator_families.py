"""The simulator on each true demand family: no policy beats the oracle (the best policy
given the true demand, found by search) in any family or seed, and stock costs money."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.pipeline import Outputs, build_features, load_output
from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.settings import FAMILIES
from intake.demo.writer import write_generated_shop
from storewise import columns as c
from storewise.settings import ElasticityConfig, PricingSettings
from storewise.shop import ShopPaths
from training.pricing.build import build_pricing_model
from training.pricing.elasticity import estimate_elasticities
from training.pricing.simulate import simulate

SETTINGS = PricingSettings()


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_no_policy_beats_the_oracle(tmp_path: Path, family: str) -> None:
    shop = ShopPaths(tmp_path / family)
    options = GeneratorSettings(customers=4_000, products=16, days=120, seed=3, demand_family=family)
    write_generated_shop(shop, generate_shop(options))
    build_features(shop)
    demand = load_output(shop, Outputs.DEMAND)
    products = pd.read_parquet(shop.table(c.PRODUCTS))
    elasticities, exposure = estimate_elasticities(demand, products, ElasticityConfig())
    model = build_pricing_model(elasticities, demand, products, SETTINGS, "RM", exposure)
    for seed in (1, 2):
        summary = simulate(shop, model, 21, seed).summary.set_index("policy")
        oracle = summary.loc["oracle", "profit"]
        assert summary.loc["fixed", "profit"] <= oracle + 1e-6, (family, seed)
        assert summary.loc["optimizer", "profit"] <= oracle + 1e-6, (family, seed)
        # profit is margin minus the holding cost of the stock left each day
        assert (summary["holding_cost"] > 0).all()
        assert (summary["regret"] >= -1e-6).all()
