"""The check on real data, where no true elasticity is known: forecast at the prices charged.

The model is fitted on all but the last `forecast_days`, then forecasts each item's daily
units over those days at the prices actually in force:

    forecast = level at the reference price x (price / reference) ** elasticity x weekday factor

where the level is the item's mean daily units over its last 28 days divided by the mean
of its price factor over those days, and the weekday factor is the shop's share of sales
by weekday (a wholesaler that never ships on Saturday gets zero there). In the same run:
the same forecast with the price effect removed (the 28-day mean by weekday), the item's
mean of its last 28 days, and the same weekday last week; intervals from a bootstrap
over items.

Lumpy demand (wholesalers buying dozens at once, on some days only): the model forecasts
expected units, spread by the weekday profile over the days, not the timing of the next
bulk order, which no one can know; WAPE rewards that over copying last week's lumps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.demand import DAY_OF_WEEK, UNITS
from inference.pricing.model import price_effect
from storewise import columns as c
from storewise.columns import DEMAND_SHAPE, ELASTICITY, EVIDENCE, REFERENCE_PRICE, SEMI_LOG
from storewise.settings import ElasticityConfig, PricingEvaluation
from training.pricing.elasticity import estimate_elasticities
from training.pricing.panel_forecast import forecast_metrics

LEVEL_DAYS = 28


def forecast_check(
    demand: pd.DataFrame,
    products: pd.DataFrame,
    settings: ElasticityConfig,
    days: int,
    evaluation: PricingEvaluation | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    last = demand[c.DATE].max()
    cutoff = last - pd.Timedelta(days=days - 1)
    train = demand[demand[c.DATE] < cutoff]
    test = demand[demand[c.DATE] >= cutoff]
    elasticities, _ = estimate_elasticities(train, products, settings)
    table = elasticities.set_index(c.ITEM_ID)
    recent = train[train[c.DATE] >= cutoff - pd.Timedelta(days=LEVEL_DAYS)]
    known = recent[c.ITEM_ID].astype(str).unique()
    test = test[test[c.ITEM_ID].astype(str).isin(known) & test[c.ITEM_ID].astype(str).isin(table.index)]

    def factor(frame: pd.DataFrame) -> np.ndarray:
        items = frame[c.ITEM_ID].astype(str)
        return price_effect(
            frame[c.PRICE].to_numpy(float) / items.map(table[REFERENCE_PRICE]).to_numpy(float),
            items.map(table[ELASTICITY]).to_numpy(float),
            (items.map(table[DEMAND_SHAPE]) == SEMI_LOG).to_numpy(),
        )

    recent = recent[recent[c.ITEM_ID].astype(str).isin(table.index)].assign(price_factor=lambda f: factor(f))
    grouped = recent.groupby(recent[c.ITEM_ID].astype(str))
    level = grouped[UNITS].mean() / grouped["price_factor"].mean().replace(0, np.nan)
    weekday_units = (
        train[train[c.DATE] >= cutoff - pd.Timedelta(days=91)]
        .groupby(DAY_OF_WEEK)[UNITS]
        .sum()
        .reindex(range(7), fill_value=0)
    )
    weekday = (
        weekday_units / weekday_units.mean() if weekday_units.mean() > 0 else pd.Series(1.0, index=range(7))
    )

    items = test[c.ITEM_ID].astype(str)
    by_weekday = test[DAY_OF_WEEK].map(weekday).to_numpy()
    mean_28 = items.map(grouped[UNITS].mean()).fillna(0).to_numpy()
    last_week = recent[recent[c.DATE] >= cutoff - pd.Timedelta(days=7)]
    same_weekday = last_week.set_index([last_week[c.ITEM_ID].astype(str), DAY_OF_WEEK])[UNITS]
    rows = pd.DataFrame(
        {
            c.ITEM_ID: items.to_numpy(),
            UNITS: test[UNITS].to_numpy(float),
            "model": items.map(level).fillna(0).to_numpy() * factor(test) * by_weekday,
            "no_price": mean_28 * by_weekday,
            "mean_28_days": mean_28,
            "same_weekday_last_week": pd.Series(list(zip(items, test[DAY_OF_WEEK], strict=True)))
            .map(same_weekday)
            .fillna(0)
            .to_numpy(),
        }
    )
    scores = forecast_metrics(
        rows,
        ["model", "no_price", "mean_28_days", "same_weekday_last_week"],
        evaluation or PricingEvaluation(),
    )
    with_variation = elasticities[elasticities[EVIDENCE] == "item"]
    metrics = {
        "forecast_days": float(days),
        "forecast_items": float(items.nunique()),
        **scores,
        "items_with_price_variation": float(len(with_variation)),
        "share_negative_elasticity": float((with_variation["raw_elasticity"] < 0).mean())
        if len(with_variation)
        else float("nan"),
        "share_negative_pooled": float((with_variation[ELASTICITY] < 0).mean())
        if len(with_variation)
        else float("nan"),
    }
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        metrics[f"elasticity_q{int(q * 100)}"] = (
            float(with_variation["raw_elasticity"].quantile(q)) if len(with_variation) else float("nan")
        )
    return metrics, elasticities
