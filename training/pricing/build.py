"""Joining the fitted elasticities with each item's state at the end of the data: the
`PricingModel` that is registered and served."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.demand import STOCK_START, velocity_column
from inference.pricing.model import PricingModel
from storewise import columns as c
from storewise.columns import BASE_RATE, EXPOSURE
from storewise.settings import PricingSettings
from training.pricing.elasticity import add_exposure

RECENT_DAYS = 28


def build_pricing_model(
    elasticities: pd.DataFrame,
    demand: pd.DataFrame,
    products: pd.DataFrame,
    settings: PricingSettings,
    currency: str,
    exposure_kind: str,
) -> PricingModel:
    """Join the elasticities with each item's state at the end of the data."""
    frame, _ = add_exposure(demand, settings.elasticity.exposure)
    last_day = frame[c.DATE].max()
    recent = frame[frame[c.DATE] > last_day - pd.Timedelta(days=RECENT_DAYS)]
    exposure = recent.groupby(c.ITEM_ID, observed=True)[EXPOSURE].mean()
    last = frame.sort_values(c.DATE).groupby(c.ITEM_ID, observed=True).tail(1).set_index(c.ITEM_ID)
    table = products[[c.ITEM_ID, c.LIST_PRICE, c.UNIT_COST, c.STOCK]].merge(
        elasticities.drop(columns=[column for column in (c.LIST_PRICE,) if column in elasticities]),
        on=c.ITEM_ID,
        how="inner",
    )
    items = table[c.ITEM_ID]
    table["daily_units_at_reference"] = (table[BASE_RATE] * items.map(exposure).fillna(0).to_numpy()).fillna(
        0
    )
    table["current_price"] = items.map(last[c.PRICE]).fillna(table[c.LIST_PRICE]).to_numpy(float)
    short, long = velocity_column(7), velocity_column(28)
    if short in last and long in last:
        change = (last[short] / last[long].where(last[long] > 0)) - 1
        table["demand_change"] = items.map(change).to_numpy(float)
    else:
        table["demand_change"] = np.nan
    stock_now = table[c.STOCK].astype("Float64").astype(float)
    if STOCK_START in last and stock_now.isna().all():
        stock_now = items.map(last[STOCK_START].astype("Float64")).astype(float)
    table[c.STOCK] = stock_now.to_numpy()
    return PricingModel(table, settings, currency, exposure_kind)
