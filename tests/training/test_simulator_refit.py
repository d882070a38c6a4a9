"""The simulator's optimizer as a live shop runs it: refitted every few days on the
history plus the days it priced, and the refit reads exactly what it sold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import training.pricing.train
from features.demand import UNITS
from features.pipeline import Outputs, build_features, load_output
from inference.pricing.model import PricingModel
from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.writer import write_generated_shop
from storewise import columns as c
from storewise.columns import DEMAND_SHAPE, ELASTICITY, EVIDENCE, HIGH, LOW, SD
from storewise.settings import ElasticityConfig, PricingSettings, load_pricing_settings
from storewise.shop import ShopPaths
from training.pricing.build import build_pricing_model
from training.pricing.elasticity import estimate_elasticities
from training.pricing.simulate import simulate
from training.pricing.switchback import SWITCHBACK
from training.pricing.train import keep_tested, train_pricing

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

    def refit(simulated: pd.DataFrame) -> PricingModel:
        histories.append(pd.concat([demand, simulated], ignore_index=True))
        return fit(histories[-1])

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

    # the refitted model is the one that prices: a refit that makes every item barely
    # elastic (-1.2: best price 6 x cost, up to the ceiling) raises the prices from day 3 on
    def barely_elastic(simulated: pd.DataFrame) -> PricingModel:
        model = fit(pd.concat([demand, simulated], ignore_index=True))
        items = model.items.assign(**{ELASTICITY: -1.2, LOW: -1.25, HIGH: -1.15})
        return PricingModel(items, model.settings, model.currency, model.exposure)

    pushed = simulate(shop, fit(demand), 7, seed=1, refit=barely_elastic).daily
    first = pushed[pushed["policy"] == "optimizer"].set_index(["day", "item_id"])["price"]
    before = trace.set_index(["day", "item_id"])["price"]
    assert first[first.index.get_level_values("day") < 3].equals(
        before[before.index.get_level_values("day") < 3]
    )
    later = first.index.get_level_values("day") >= 3
    assert (first[later] > before[later]).all()


def test_a_refit_keeps_the_price_tests_estimates() -> None:
    columns = [c.ITEM_ID, ELASTICITY, SD, LOW, HIGH, EVIDENCE]
    fitted = pd.DataFrame(
        [["a", -2.0, 0.5, -2.8, -1.2, "product"], ["b", -3.0, 0.2, -3.3, -2.7, "item"]], columns=columns
    )
    run = pd.DataFrame(
        [["a", -1.5, 0.1, -1.66, -1.34, "item", "test-1"], ["b", -2.9, 0.2, -3.2, -2.6, "item", None]],
        columns=[*columns, SWITCHBACK],
    )
    kept = keep_tested(fitted, run).set_index(c.ITEM_ID)
    # a was measured by the price test: the run's estimate stays; b is refitted
    assert kept.loc["a", [ELASTICITY, SD, LOW, HIGH, EVIDENCE, SWITCHBACK]].tolist() == [
        -1.5,
        0.1,
        -1.66,
        -1.34,
        "item",
        "test-1",
    ]
    assert kept.loc["b", [ELASTICITY, LOW, HIGH]].tolist() == [-3.0, -3.3, -2.7]
    assert keep_tested(fitted, run.drop(columns=[SWITCHBACK])) is fitted


def test_train_pricing_refits_with_the_runs_own_shape_and_spread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refit re-estimates every item's elasticity, not the shop's choices: the demand
    shape and the pooling prior's spread stay the ones the run found."""
    shop = ShopPaths(tmp_path / "shop")
    write_generated_shop(
        shop, generate_shop(GeneratorSettings(customers=3_000, products=12, days=90, seed=4))
    )
    build_features(shop)
    used: list[ElasticityConfig] = []

    def recording(history: pd.DataFrame, products: pd.DataFrame, settings: ElasticityConfig) -> Any:
        used.append(settings)
        return estimate_elasticities(history, products, settings)

    monkeypatch.setattr(training.pricing.train, "estimate_elasticities", recording)
    outcome = train_pricing(shop, register=False, simulation_days=8)
    # the run's fit, then one refit (day 7 of 8) for each of the configured seeds
    seeds = len(load_pricing_settings().simulation.seeds)  # config/pricing.yaml, as train_pricing reads it
    assert len(used) == 1 + seeds
    assert used[0].prior_spread == "shop"
    spread = outcome.metrics["elasticity_prior_spread"]
    assert spread >= load_pricing_settings().elasticity.min_prior_sd
    shape = str(outcome.elasticities[DEMAND_SHAPE].iloc[0])
    assert [(s.prior_spread, s.shape) for s in used[1:]] == [(spread, shape)] * seeds
