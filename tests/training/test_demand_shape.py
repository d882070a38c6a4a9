"""The shop's demand shape is chosen by a Vuong test of the two fits' likelihoods, and the
elasticity stays the one at the reference price either way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.demand import UNITS
from storewise import columns as c
from storewise.columns import CONSTANT, EXPOSURE, REFERENCE_PRICE, SEMI_LOG
from storewise.settings import ElasticityConfig
from training.pricing.elasticity import choose_shape, fit_item


def shop_days(
    shape: str, elasticity: float = -2.5, items: int = 30, days: int = 365, seed: int = 0
) -> pd.DataFrame:
    """Daily units per item, prices moving 0.7-1.3 x the reference, demand of `shape` with
    the given elasticity at the reference price, views as exposure."""
    rng = np.random.default_rng(seed)
    frames = []
    for item in range(items):
        relative = rng.choice([0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.1, 1.2, 1.3], days)
        views = rng.poisson(200, days).astype(float) + 1
        move = np.exp(elasticity * (relative - 1)) if shape == SEMI_LOG else relative**elasticity
        frames.append(
            pd.DataFrame(
                {
                    c.ITEM_ID: f"item{item}",
                    c.PRICE: 40.0 * relative,
                    REFERENCE_PRICE: 40.0,
                    UNITS: rng.poisson(views * 0.05 * move).astype(float),
                    EXPOSURE: views,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("truth", [SEMI_LOG, CONSTANT])
def test_the_test_finds_the_shape_the_data_came_from(truth: str) -> None:
    shape, finding = choose_shape(shop_days(truth), ElasticityConfig(), "views")
    assert shape == truth
    assert finding.used == (truth == SEMI_LOG)
    assert "Vuong-type z" in finding.reason


def test_too_little_data_keeps_constant_elasticity() -> None:
    days = shop_days(SEMI_LOG, items=2, days=30)
    shape, finding = choose_shape(days, ElasticityConfig(), "views")
    assert shape == CONSTANT
    assert not finding.used


def test_configuration_forces_a_shape() -> None:
    shape, finding = choose_shape(shop_days(CONSTANT), ElasticityConfig(shape=SEMI_LOG), "views")
    assert shape == SEMI_LOG
    assert "by configuration" in finding.reason


def test_either_fit_measures_the_elasticity_at_the_reference_price() -> None:
    for shape in (SEMI_LOG, CONSTANT):
        rows = shop_days(shape, items=1, days=3000, seed=1)
        fit = fit_item(rows, 1e-6, controls=False, shape=shape)
        assert fit is not None
        assert fit.elasticity == pytest.approx(-2.5, abs=3 * fit.se)
        assert fit.se < 0.1
