"""The simulator on each true demand family: no policy beats the oracle (the best policy
given the true demand, found by search) in any family or seed, and stock costs money."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.pipeline import Outputs, build_features, load_output
from inference.pricing.model import PricingModel
from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.settings import FAMILIES
from intake.demo.writer import write_generated_shop
from storewise import columns as c
from storewise.settings import ElasticityConfig, PricingSettings
from storewise.shop import ShopPaths
from training.pricing.build import build_pricing_model
from training.pricing.elasticity import estimate_elasticities
from training.pricing.simulate import paired_gain, simulate
from training.pricing.train import run_choices

SETTINGS = PricingSettings()
# the optimizer refitted weekly on what it sold (a live shop): outside the oracle's class
WEEKLY = SETTINGS.model_copy(
    update={"simulation": SETTINGS.simulation.model_copy(update={"refit_every_days": 7})}
)


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
    model = build_pricing_model(elasticities, demand, products, WEEKLY, "RM", exposure)

    same_choices = ElasticityConfig().model_copy(update=run_choices(elasticities))  # as `train pricing`

    def refit(simulated: pd.DataFrame) -> PricingModel:
        history = pd.concat([demand, simulated], ignore_index=True)
        refitted, kind = estimate_elasticities(history, products, same_choices)
        return build_pricing_model(refitted, history, products, WEEKLY, "RM", kind)

    for seed in (1, 2):
        summary = simulate(shop, model, 21, seed).summary.set_index("policy")
        learning = simulate(shop, model, 21, seed, refit=refit).summary.set_index("policy")
        oracle = summary.loc["oracle", "profit"]
        assert learning.loc["oracle", "profit"] == oracle
        assert summary.loc["fixed", "profit"] <= oracle + 1e-6, (family, seed)
        assert summary.loc["optimizer", "profit"] <= oracle + 1e-6, (family, seed)
        assert learning.loc["optimizer", "profit"] <= oracle + 1e-6, (family, seed)
        # profit is margin minus the holding cost of the stock left each day
        assert (summary["holding_cost"] > 0).all()
        assert (summary["regret"] >= -1e-6).all()


def test_the_paired_interval_resamples_whole_clusters() -> None:
    # two seeds, three items; items 0 and 1 substitute (one cluster). Per cluster over the
    # seeds: cluster 0 optimizer 2 x (10 + 10) = 40, fixed 32, oracle 80; cluster 1
    # optimizer 20, fixed 16, oracle 40: every resample has (opt - fixed) / oracle = 0.1
    rows = [
        {"policy": policy, "seed": seed, "item_id": item, "cluster": cluster, "profit": profit}
        for seed in (1, 2)
        for item, cluster in (("a", 0), ("b", 0), ("c", 1))
        for policy, profit in (("optimizer", 10.0), ("fixed", 8.0), ("oracle", 20.0))
    ]
    gain = paired_gain(pd.DataFrame(rows), samples=200, seed=0)
    assert gain["clusters"] == 2
    assert gain["optimizer_minus_fixed_share"] == pytest.approx(0.1)
    assert gain["optimizer_minus_fixed_share_low"] == pytest.approx(0.1)
    assert gain["optimizer_minus_fixed_share_high"] == pytest.approx(0.1)
    # one cluster where the optimizer loses: the interval opens around the point
    rows += [{**row, "profit": 0.0} for row in rows if row["item_id"] == "c" and row["policy"] == "optimizer"]
    frame = (
        pd.DataFrame(rows).groupby(["policy", "seed", "item_id", "cluster"], as_index=False)["profit"].min()
    )
    gain = paired_gain(frame, samples=200, seed=0)
    # opt 40 + 0, fixed 32 + 16, oracle 120: (40 - 48) / 120
    assert gain["optimizer_minus_fixed_share"] == pytest.approx(-8 / 120)
    assert gain["optimizer_minus_fixed_share_low"] < -8 / 120 < gain["optimizer_minus_fixed_share_high"]
