"""The simulator's optimizer as a live shop runs it: refitted every few days on the
history plus the days it priced, and the refit reads exactly what it sold."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.demand import UNITS
from features.pipeline import Outputs, build_features, load_output
from inference.pricing.model import PricingModel
from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.writer import write_generated_shop
from storewise import columns as c
from storewise.settings import ElasticityConfig, PricingSettings
from storewise.shop import ShopPaths
from training.pricing.build import build_pricing_model
from training.pricing.elasticity import estimate_elasticities
from training.pricing.simulate import simulate

DEFAULT = PricingSettings()
BASE = DEFAULT.model_copy(
    update={"simulation": DEFAULT.simulation.model_copy(update={"refit_every_days": 0})}
)
EVERY_3_DAYS = BASE.model_copy(
    update={"simulation": BASE.simulation.model_copy(update={"refit_every_days": 3})}
)


def test_the_optimizer_is_refitted_on_what_it_sold(tmp_path: Path) -> None:
    shop = ShopPaths(tmp_path / "shop")
    write_generated_shop(
        shop, generate_shop(GeneratorSettings(customers=3_000, products=12, days=90, seed=4))
    )
    build_features(shop)
    demand = load_output(shop, Outputs.DEMAND)
    products = pd.read_parquet(shop.table(c.PRODUCTS))

    def fit(history: pd.DataFrame) -> PricingModel:
        elasticities, exposure = estimate_elasticities(history, products, ElasticityConfig())
        return build_pricing_model(elasticities, history, products, EVERY_3_DAYS, "RM", exposure)

    histories: list[pd.DataFrame] = []

    def refit(history: pd.DataFrame) -> PricingModel:
        histories.append(history)
        return fit(history)

    result = simulate(shop, fit(demand), 7, seed=1, refit=refit)
    # refitted before days 3 and 6 (0-based), on the history plus the 3 and 6 days priced
    items = demand[c.ITEM_ID].nunique()
    assert [len(history) - len(demand) for history in histories] == [3 * items, 6 * items]
    added = histories[1].iloc[len(demand) :]
    last = demand[c.DATE].max()
    assert sorted(added[c.DATE].unique()) == [last + pd.Timedelta(days=d) for d in range(1, 7)]
    # the rows hold the optimizer's own prices and sales (its trace of the tracked items)
    trace = result.daily[result.daily["policy"] == "optimizer"]
    for row in trace[trace["day"] < 6].itertuples():
        day = last + pd.Timedelta(days=int(row.day) + 1)
        sold = added[(added[c.ITEM_ID] == row.item_id) & (added[c.DATE] == day)]
        assert sold[c.PRICE].tolist() == [row.price]
        assert sold[UNITS].tolist() == [row.units]
    summary = result.summary.set_index("policy")
    assert summary.loc["optimizer", "profit"] <= summary.loc["oracle", "profit"] + 1e-6


def test_without_a_refit_function_the_optimizer_keeps_its_model(tmp_path: Path) -> None:
    shop = ShopPaths(tmp_path / "shop")
    write_generated_shop(shop, generate_shop(GeneratorSettings(customers=2_000, products=8, days=60, seed=5)))
    build_features(shop)
    demand = load_output(shop, Outputs.DEMAND)
    products = pd.read_parquet(shop.table(c.PRODUCTS))
    elasticities, exposure = estimate_elasticities(demand, products, ElasticityConfig())
    one_fit = build_pricing_model(elasticities, demand, products, BASE, "RM", exposure)
    every_3 = build_pricing_model(elasticities, demand, products, EVERY_3_DAYS, "RM", exposure)
    # the setting alone changes nothing: refitting needs the run's fit
    pd.testing.assert_frame_equal(
        simulate(shop, one_fit, 7, 1).summary, simulate(shop, every_3, 7, 1).summary
    )
