"""The experiment machinery proven on the demo shop's truth (small runs; the full rates are
in benchmarks/README.md, `python -m benchmarks.bench_experiments`): a simulated population
answers the variants from the generator's true tastes and demand; the report picks the
truly better recommender, A/A runs declare a difference about as often as the nominal
rate, and a switchback test's interval covers the item's true elasticity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.experiment_proof import experiment_rates, switchback_coverage, wilson
from storewise import columns as c
from storewise.settings import ExperimentSettings
from storewise.shop import ShopPaths
from tests.helpers import SMALL
from training.online_simulation import load_truth, popularity_lists, taste_lists, true_value
from training.pricing.switchback import apply_estimates, estimate

pytestmark = pytest.mark.slow
SETTINGS = ExperimentSettings(minimum_effect=0.3)


def test_the_population_is_the_generators_and_its_truth_ranks_recommenders(small_shop: ShopPaths) -> None:
    truth = load_truth(small_shop, SMALL)
    customers = pd.read_parquet(small_shop.table(c.CUSTOMERS))
    assert len(truth.segment) == len(customers) == SMALL.customers
    assert truth.eligible.sum() == customers[c.CONSENT_PERSONALIZATION].sum()
    assert np.allclose(truth.liking.mean(axis=1), 1.0)
    taste, pop = taste_lists(truth, 10), popularity_lists(truth, 10)
    assert true_value(truth, taste, 0.05) > 1.5 * true_value(truth, pop, 0.05), "tastes beat one list for all"
    with pytest.raises(ValueError, match="not the shop's"):
        load_truth(small_shop, SMALL.__class__(**{**SMALL.__dict__, "seed": 8}))


def test_the_report_picks_the_truly_better_recommender_and_aa_runs_stay_near_the_nominal_rate(
    small_shop: ShopPaths,
) -> None:
    truth = load_truth(small_shop, SMALL)
    taste, pop = taste_lists(truth, 10), popularity_lists(truth, 10)
    better = experiment_rates(truth, pop, taste, SETTINGS, runs=40, seed=100)
    assert better.true_effect > 0.5
    assert better.correct == better.runs, better  # a large true win is always promoted
    worse = experiment_rates(truth, taste, pop, SETTINGS, runs=40, seed=200)
    assert worse.wrong == 0, worse
    assert worse.correct >= 36, worse  # and a large loss stopped
    aa = experiment_rates(truth, taste, taste, SETTINGS, runs=120, seed=300)
    assert aa.true_effect == 0
    low, _ = wilson(aa.declared, aa.runs)
    # at 90% confidence: about 10% of A/A runs declare a difference; beyond 10% only by chance
    assert low <= 0.10, aa
    assert aa.declared / aa.runs <= 0.17, aa


def test_a_switchback_test_recovers_the_true_elasticity(small_shop: ShopPaths) -> None:
    truth = pd.read_parquet(small_shop.ground_truth / "items.parquet")
    busiest = truth.sort_values("view_share", ascending=False)["item_id"].head(4).tolist()
    coverage = switchback_coverage(small_shop, busiest, step=0.045, days=120, runs=10, seed=1)
    assert coverage.runs >= 30
    assert coverage.covered / coverage.runs >= 0.75, coverage  # nominal 90%
    assert set(coverage.truth) == set(busiest)


def test_the_estimator_on_poisson_data_and_its_place_in_the_elasticity_table() -> None:
    rng = np.random.default_rng(4)
    days = 400
    arm = rng.random(days) < 0.5
    price = np.where(arm, 104.5, 95.5)
    views = rng.poisson(400, days)
    units = rng.poisson(views * 0.05 * (price / 100) ** -2.0)
    rows = pd.DataFrame(
        {
            c.ITEM_ID: "A",
            c.DATE: pd.date_range("2026-01-01", periods=days),
            c.PRICE: price,
            "units": units,
            "views": views,
        }
    )
    found = estimate(rows)
    assert found is not None
    assert found.low <= -2.0 <= found.high
    assert abs(found.elasticity + 2.0) < 3 * found.se
    table = pd.DataFrame(
        {
            c.ITEM_ID: ["A", "B"],
            "elasticity": [-1.0, -1.5],
            "sd": 0.5,
            "low_90": 0.0,
            "high_90": 0.0,
            "evidence": "category",
        }
    )
    updated = apply_estimates(table, rows, "price-1", 0.90).set_index(c.ITEM_ID)
    assert updated.loc["A", "elasticity"] == pytest.approx(found.elasticity)
    assert (updated.loc["A", "evidence"], updated.loc["A", "switchback"]) == ("item", "price-1")
    assert updated.loc["B", "elasticity"] == -1.5
    assert updated.loc["B", "switchback"] is None
    assert estimate(rows.head(4)) is None, "too few days"
    # a semi-log shop reads elasticities at its reference price: the test's (measured around
    # its median price) scaled by reference / median
    semi_log = table.assign(demand_shape="semi-log", reference_price=[80.0, 80.0])
    scaled = apply_estimates(semi_log, rows, "price-1", 0.90).set_index(c.ITEM_ID)
    assert found.median_price in (95.5, 104.5)
    scale = 80.0 / found.median_price
    assert scaled.loc["A", "elasticity"] == pytest.approx(found.elasticity * scale)
    assert scaled.loc["A", "high_90"] == pytest.approx(found.high * scale)
