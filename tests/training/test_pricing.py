"""Pricing: elasticity recovery, guardrails on adversarial input, endings, the simulator, the real-data check."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.pipeline import Outputs, build_features, load_output
from inference.pricing.policy import apply_ending, decide
from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.writer import write_generated_shop
from intake.importers.common import Consent, write_import
from intake.importers.online_retail import import_online_retail
from storewise import columns as c
from storewise.settings import ElasticityConfig, PricingSettings
from storewise.shop import ShopPaths
from training.pricing.build import build_pricing_model
from training.pricing.elasticity import estimate_elasticities
from training.pricing.forecast import forecast_check
from training.pricing.simulate import simulate
from training.pricing.train import truth_metrics

SETTINGS = PricingSettings()


@pytest.fixture(scope="module")
def priced_shop(tmp_path_factory: pytest.TempPathFactory) -> ShopPaths:
    shop = ShopPaths(tmp_path_factory.mktemp("pricing") / "shop")
    write_generated_shop(
        shop, generate_shop(GeneratorSettings(customers=40_000, products=30, days=365, seed=5))
    )
    build_features(shop)
    return shop


def test_elasticities_are_recovered_on_a_shop_with_known_truth(priced_shop: ShopPaths) -> None:
    demand = load_output(priced_shop, Outputs.DEMAND)
    products = pd.read_parquet(priced_shop.table(c.PRODUCTS))
    elasticities, exposure = estimate_elasticities(demand, products, ElasticityConfig())
    assert exposure == "views"
    metrics = truth_metrics(elasticities, priced_shop, SETTINGS)
    assert metrics["elasticity_items_enough_variation"] >= 15
    assert metrics["elasticity_mae"] < 0.35
    assert metrics["elasticity_coverage_90"] >= 0.7
    assert (elasticities["low_90"] < elasticities["elasticity"]).all()
    assert (elasticities["elasticity"] < elasticities["high_90"]).all()


def state(**overrides: object) -> pd.DataFrame:
    base = {
        "item_id": "x",
        "current_price": 79.9,
        "list_price": 79.9,
        "unit_cost": 30.0,
        "stock": 100.0,
        "elasticity": -2.0,
        "low_90": -2.2,
        "high_90": -1.8,
        "item_evidence": True,
        "daily_units": 2.0,
        "demand_change": np.nan,
    }
    base.update(overrides)
    return pd.DataFrame([base])


def test_profit_maximizing_target_and_the_daily_cap() -> None:
    decision = decide(state(), SETTINGS).iloc[0]
    # a cut is priced at the interval's least elastic end: cost * e / (1 + e) = 30 * 1.8 / 0.8
    # (the estimate -2 alone: 30 * 2 = 60)
    assert decision["target_price"] == pytest.approx(67.5)
    assert decision["price"] == 72.90  # 79.90 - 10% = 71.91, the nearest .90 ending within the limit
    assert "capped at the 10% daily limit" in decision["reason"]


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"unit_cost": 100.0}, lambda d: d["price"] >= 115.0 and "cost is above list price" in d["reason"]),
        ({"stock": 0.0}, lambda d: d["price"] == 79.9 and "out of stock: price held" in d["reason"]),
        (
            {"item_evidence": False, "low_90": -3.0, "high_90": -1.0},
            lambda d: "from its category" in d["reason"] and d["price"] > 71.9,
        ),
        (
            {"daily_units": 500.0, "stock": 40.0, "demand_change": 3.0},
            lambda d: (
                d["price"] <= 79.9 * 1.1
                and "demand up 300% this week" in d["reason"]
                and "days of stock left" in d["reason"]
            ),
        ),
        (
            {"elasticity": -0.4, "low_90": -0.6, "high_90": -0.2},
            lambda d: d["price"] > 79.9 and "barely reacts" in d["reason"],
        ),
        ({"stock": 50_000.0}, lambda d: d["price"] < 79.9 and "days of stock on hand" in d["reason"]),
        ({"stock": np.nan, "unit_cost": np.nan}, lambda d: d["price"] >= 79.9 * 0.55 * 1.15),
    ],
)
def test_guardrails_on_adversarial_items(overrides: dict[str, object], check: object) -> None:
    decision = decide(state(**overrides), SETTINGS).iloc[0]
    assert check(decision), decision["reason"]  # type: ignore[operator]


def test_guardrails_hold_on_random_states() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    list_price = rng.uniform(5, 500, n)
    cost = list_price * rng.uniform(0.1, 1.4, n)
    current = list_price * rng.uniform(0.5, 1.6, n)
    elasticity = rng.uniform(-5, 0.5, n)
    width = rng.uniform(0, 3, n)
    states = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n)],
            "current_price": current,
            "list_price": list_price,
            "unit_cost": cost,
            "stock": np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 500, n)),
            "elasticity": elasticity,
            "low_90": elasticity - width / 2,
            "high_90": elasticity + width / 2,
            "item_evidence": rng.random(n) < 0.7,
            "daily_units": rng.exponential(3, n),
            "demand_change": rng.normal(0, 0.5, n),
        }
    )
    result = decide(states, SETTINGS)
    g = SETTINGS.guardrails
    floor = cost * (1 + g.min_margin)
    ceiling = list_price * g.ceiling_multiple
    price = result["price"].to_numpy()
    assert (price >= floor - 1e-6).all(), "never below cost plus the minimum margin"
    assert (price[floor <= ceiling] <= ceiling[floor <= ceiling] + 1e-6).all(), "never above the ceiling"
    assert (price[floor > ceiling] < floor[floor > ceiling] + 1.0).all(), (
        "cost above list: at the floor's first ending"
    )
    inside = (floor <= current * (1 - g.max_daily_change)) & (ceiling >= current * (1 + g.max_daily_change))
    change = np.abs(price / current - 1)
    assert (change[inside] <= g.max_daily_change + 0.011 / current[inside] * 100).all(), (
        "the daily limit holds where the bounds allow it"
    )
    cents = np.round(price * 100).astype(int) % 100
    ends = (cents == 90) | (price < 1)
    assert ends.mean() > 0.97, "shop endings, except where no .90 fits the bounds"
    assert result["reason"].str.len().min() > 20


def test_price_endings() -> None:
    prices = np.array([72.3, 0.85, 10.0, 99.95])
    low = np.array([71.9, 0.5, 9.0, 95.0])
    high = np.array([87.9, 1.0, 11.0, 99.95])
    assert apply_ending(prices, low, high, 0.90).tolist() == [71.9, 0.85, 9.9, 99.9]


def test_the_oracle_is_not_beaten_by_more_than_noise(priced_shop: ShopPaths) -> None:
    demand = load_output(priced_shop, Outputs.DEMAND)
    products = pd.read_parquet(priced_shop.table(c.PRODUCTS))
    elasticities, exposure = estimate_elasticities(demand, products, ElasticityConfig())
    model = build_pricing_model(elasticities, demand, products, SETTINGS, "RM", exposure)
    # the purchase orders' promised days reach the policy: days from the day after the data
    promised = pd.to_datetime(products.set_index(c.ITEM_ID)[c.NEXT_DELIVERY])
    priced = demand[c.DATE].max().tz_localize(None) + pd.Timedelta(days=1)
    expected = (promised - priced).dt.days.reindex(model.arrays["item_id"]).to_numpy(float)
    assert np.isfinite(expected).any()
    np.testing.assert_array_equal(model.states(np.arange(len(expected)))["delivery_days"], expected)
    shares = []
    for seed in (1, 2):
        result = simulate(priced_shop, model, 30, seed)
        shares.append(result.summary.set_index("policy")["profit_share_of_oracle"])
        daily = result.daily
        assert set(daily["policy"]) == {"fixed", "optimizer", "oracle"}
        fixed = daily[daily["policy"] == "fixed"]
        assert fixed.groupby("item_id")["price"].nunique().eq(1).all(), "the fixed policy never changes price"
    mean = pd.concat(shares, axis=1).mean(axis=1)
    assert mean["optimizer"] <= 1.02
    assert mean["fixed"] <= 1.02
    assert mean["optimizer"] > 0.85


def test_forecast_on_the_real_sample_beats_both_baselines(tmp_path: Path, online_retail_sample: Path) -> None:
    shop = ShopPaths(tmp_path / "retail")
    write_import(shop, import_online_retail(online_retail_sample, consent=Consent.PERSONALIZATION))
    build_features(shop)
    demand = load_output(shop, Outputs.DEMAND)
    products = pd.read_parquet(shop.table(c.PRODUCTS))
    metrics, _elasticities = forecast_check(demand, products, ElasticityConfig(), 30)
    assert metrics["wape_model"] < metrics["wape_mean_28_days"]
    assert metrics["wape_model"] < metrics["wape_same_weekday_last_week"]
    assert metrics["share_negative_elasticity"] > 0.5
    assert metrics["forecast_items"] > 1000
    shutil.rmtree(shop.root)
