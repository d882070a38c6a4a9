"""The out-of-sample check of the panel model on real price changes.

The model is fitted on every period before the last `forecast_days` and forecasts the
recorded periods after, at the prices charged (each item's own price, its shelf's prices,
the deals and ads that ran): what a shop owner needs an elasticity to get right. Beside
it, in the same run and on the same rows:

- `no_price`: the same model with the price effect removed (no own-price, store-slope or
  shelf-price terms; deal, feature, season and lags kept), refitted: how much the prices
  themselves explain;
- `last_period`: each series' last recorded units before the cut;
- `mean_<N>_periods`: the mean of each series' last N recorded periods.

WAPE (sum of absolute errors over sum of units) for each, and intervals from a bootstrap
over series (store x product): the series are resampled with replacement and every
forecast is scored on the same resample, so the intervals of the differences are paired.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.demand import RECORDED, UNITS
from storewise import columns as c
from storewise.settings import ElasticityConfig, PricingEvaluation
from training.pricing.panel import PanelFit, Progress, choose_spec, fit_panel, panel_frame, predict


@dataclass
class PanelForecast:
    metrics: dict[str, float]
    rows: pd.DataFrame  # the test rows with every forecast
    fit: PanelFit


def forecast_split(demand: pd.DataFrame, days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(last period trained on, first period forecast): the forecast covers the periods
    starting in the last `days` days of the data."""
    last = demand[c.DATE].max()
    cutoff = last - pd.Timedelta(days=days - 1)
    trained = demand.loc[demand[c.DATE] < cutoff, c.DATE]
    if trained.empty:
        raise ValueError(f"the data spans less than the {days} forecast days")
    return trained.max(), cutoff


def panel_forecast_check(
    demand: pd.DataFrame,
    products: pd.DataFrame,
    settings: ElasticityConfig,
    evaluation: PricingEvaluation,
    days: int,
    period: str,
    progress: Progress | None = None,
) -> PanelForecast:
    train_until, cutoff = forecast_split(demand, days)
    frame = panel_frame(demand, products, train_until)
    train = frame[frame[c.DATE] <= train_until]
    test = frame[(frame[c.DATE] >= cutoff) & frame[RECORDED]].copy()
    spec = choose_spec(train, settings, period)
    fit = fit_panel(train, spec, settings, progress)
    no_price = fit_panel(train, replace(spec, price=False, cross=False), settings, progress)
    n = evaluation.baseline_periods
    test["model"] = predict(fit, test)
    test["no_price"] = predict(no_price, test)
    recent = train[train[RECORDED]].groupby(c.ITEM_ID)[UNITS]
    test["last_period"] = test[c.ITEM_ID].map(recent.last()).to_numpy(float)
    test[f"mean_{n}_periods"] = (
        test[c.ITEM_ID].map(recent.apply(lambda units: units.tail(n).mean())).to_numpy(float)
    )
    scored = test.dropna(subset=["model", "no_price", "last_period"])
    forecasts = ["model", "no_price", "last_period", f"mean_{n}_periods"]
    metrics = forecast_metrics(scored, forecasts, evaluation)
    metrics.update(
        {
            "forecast_days": float(days),
            "forecast_periods": float(scored[c.DATE].nunique()),
            "forecast_series": float(scored[c.ITEM_ID].nunique()),
            "forecast_rows": float(len(scored)),
            "forecast_rows_unscored": float(len(test) - len(scored)),
            "cross_effects_used": float(fit.cross.used),
        }
    )
    return PanelForecast(metrics, scored, fit)


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.abs(actual - forecast).sum() / max(actual.sum(), 1e-9))


def forecast_metrics(
    rows: pd.DataFrame, forecasts: list[str], evaluation: PricingEvaluation
) -> dict[str, float]:
    """WAPE and bias of each forecast, with 90% bootstrap intervals over series; the
    model's difference from (and ratio to) each other forecast, paired."""
    actual = rows[UNITS].to_numpy(float)
    series = pd.factorize(rows[c.ITEM_ID])[0]
    n_series = int(series.max()) + 1
    units = np.bincount(series, weights=actual, minlength=n_series)
    rng = np.random.default_rng(evaluation.bootstrap_seed)
    counts = rng.multinomial(n_series, np.full(n_series, 1 / n_series), size=evaluation.bootstrap_samples)
    replicates = {}
    metrics: dict[str, float] = {}
    for name in forecasts:
        forecast = rows[name].to_numpy(float)
        errors = np.bincount(series, weights=np.abs(actual - forecast), minlength=n_series)
        replicates[name] = (counts @ errors) / np.maximum(counts @ units, 1e-9)
        metrics[f"wape_{name}"] = wape(actual, forecast)
        metrics[f"bias_{name}"] = float((forecast - actual).sum() / max(actual.sum(), 1e-9))
        metrics |= _interval(f"wape_{name}", replicates[name])
    for name in forecasts[1:]:
        metrics[f"wape_model_minus_{name}"] = metrics["wape_model"] - metrics[f"wape_{name}"]
        metrics |= _interval(f"wape_model_minus_{name}", replicates["model"] - replicates[name])
        metrics[f"wape_model_over_{name}"] = metrics["wape_model"] / max(metrics[f"wape_{name}"], 1e-9)
        metrics |= _interval(f"wape_model_over_{name}", replicates["model"] / replicates[name])
    return metrics


def _interval(name: str, values: np.ndarray) -> dict[str, float]:
    low, high = np.quantile(values, [0.05, 0.95])
    return {f"{name}_low": float(low), f"{name}_high": float(high)}
