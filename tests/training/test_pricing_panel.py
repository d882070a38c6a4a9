"""The pooled store x product elasticity model: known answers on a generated panel, and
the bars of issue 15 on the shared Dominick's sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.demand import RECORDED, UNITS
from features.pipeline import Outputs, build_features, load_output
from intake.importers.common import write_import
from intake.importers.weekly_sales import import_weekly_sales
from storewise import columns as c
from storewise.settings import ElasticityConfig, PricingSettings
from storewise.shop import ShopPaths
from tests.helpers import DOMINICKS_SAMPLE
from training.pricing.panel import choose_spec, fit_panel, panel_frame, product_table
from training.pricing.panel_forecast import panel_forecast_check

TRUE_ELASTICITY = {"A": -2.5, "B": -1.5}
DEAL_EFFECT = 0.4
STORES, WEEKS = 8, 60


def generated_panel(shelf_effect: float, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two products in each store, one shelf: log mean units = store level + e log(price /
    usual) + 0.4 deal + shelf_effect x the other product's log(price / usual)."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2024-01-01", periods=WEEKS, freq="7D")
    rows = []
    for store in range(STORES):
        level = np.log(150) + rng.normal(0, 0.3)
        log_price = {product: rng.uniform(-0.2, 0.2, WEEKS) for product in TRUE_ELASTICITY}
        deal = {product: rng.random(WEEKS) < 0.2 for product in TRUE_ELASTICITY}
        for product in log_price:
            log_price[product] = log_price[product] + np.where(deal[product], np.log(0.85), 0.0)
        for product, elasticity in TRUE_ELASTICITY.items():
            other = "B" if product == "A" else "A"
            mean = np.exp(
                level
                + elasticity * log_price[product]
                + DEAL_EFFECT * deal[product]
                + shelf_effect * log_price[other]
            )
            rows.append(
                pd.DataFrame(
                    {
                        c.ITEM_ID: f"{product}@{store}",
                        c.DATE: weeks,
                        UNITS: rng.poisson(mean),
                        c.PRICE: 2.0 * np.exp(log_price[product]),
                        c.PROMO: deal[product],
                        c.FEATURE: 0.0,
                        RECORDED: True,
                    }
                )
            )
    demand = pd.concat(rows, ignore_index=True)
    items = demand[c.ITEM_ID].unique()
    products = pd.DataFrame(
        {
            c.ITEM_ID: items,
            c.PRODUCT: [item.split("@")[0] for item in items],
            c.STORE: [item.split("@")[1] for item in items],
            c.CATEGORY: "juice",
        }
    )
    return demand, products


def fitted_products(shelf_effect: float) -> tuple[pd.DataFrame, bool]:
    demand, products = generated_panel(shelf_effect)
    frame = panel_frame(demand, products, demand[c.DATE].max())
    config = ElasticityConfig()
    fit = fit_panel(frame, choose_spec(frame, config, "week"), config)
    return product_table(fit).set_index(c.PRODUCT), fit.cross.used


def test_own_price_elasticities_are_recovered_with_intervals_that_cover_them() -> None:
    table, cross_used = fitted_products(shelf_effect=0.0)
    assert not cross_used  # no shelf effect in the truth: the Wald test leaves it out
    for product, truth in TRUE_ELASTICITY.items():
        row = table.loc[product]
        assert row["elasticity"] == pytest.approx(truth, abs=0.15)
        assert row["elasticity_low_90"] < truth < row["elasticity_high_90"]
        assert row["deal_effect_low_90"] < DEAL_EFFECT < row["deal_effect_high_90"]


def test_a_shelf_effect_in_the_truth_is_kept_and_measured() -> None:
    table, cross_used = fitted_products(shelf_effect=0.8)
    assert cross_used
    for product, truth in TRUE_ELASTICITY.items():
        row = table.loc[product]
        assert row["shelf_effect_low_90"] < 0.8 < row["shelf_effect_high_90"]
        assert row["elasticity"] == pytest.approx(truth, abs=0.15)


@pytest.mark.slow
def test_the_shared_sample_negative_elasticities_and_a_forecast_that_needs_the_price(tmp_path: Path) -> None:
    shop = ShopPaths(tmp_path / "dominicks")
    write_import(shop, import_weekly_sales(DOMINICKS_SAMPLE))
    build_features(shop)
    demand = load_output(shop, Outputs.DEMAND)
    products = pd.read_parquet(shop.table(c.PRODUCTS))
    settings = PricingSettings()
    check = panel_forecast_check(demand, products, settings.elasticity, settings.evaluation, 140, "week")
    m = check.metrics
    assert m["forecast_periods"] == 20
    # the price matters out of sample: the paired interval of the difference excludes 0
    assert m["wape_model_minus_no_price_high"] < 0
    assert m["wape_model"] < m["wape_last_period"]
    table = product_table(check.fit)
    assert len(table) == 11
    assert (table["elasticity_high_90"] < 0).all()
