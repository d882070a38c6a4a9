"""Joining the fitted elasticities with each item's state at the end of the data: the
`PricingModel` that is registered and served."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.demand import PERIOD_DAYS, STOCK_START, velocity_column
from inference.pricing.model import PricingModel
from storewise import columns as c
from storewise.columns import BASE_RATE, DELIVERY_PERIODS, EXPOSURE, REFERENCE_PRICE
from storewise.settings import PricingSettings
from training.pricing.elasticity import add_exposure
from training.pricing.panel import FEATURE_LAG, PROMO_LAG, PanelFit, predict

RECENT_DAYS = 28


def build_pricing_model(
    elasticities: pd.DataFrame,
    demand: pd.DataFrame,
    products: pd.DataFrame,
    settings: PricingSettings,
    currency: str,
    exposure_kind: str,
) -> PricingModel:
    """Join the per-item elasticities with each item's state at the end of the data."""
    frame, _ = add_exposure(demand, settings.elasticity.exposure)
    last_day = frame[c.DATE].max()
    recent = frame[frame[c.DATE] > last_day - pd.Timedelta(days=RECENT_DAYS)]
    exposure = recent.groupby(c.ITEM_ID, observed=True)[EXPOSURE].mean()
    table = products[_product_columns(products)].merge(
        elasticities.drop(columns=[column for column in (c.LIST_PRICE,) if column in elasticities]),
        on=c.ITEM_ID,
        how="inner",
    )
    items = table[c.ITEM_ID]
    table["daily_units_at_reference"] = (table[BASE_RATE] * items.map(exposure).fillna(0).to_numpy()).fillna(
        0
    )
    return PricingModel(_with_state(table, frame), settings, currency, exposure_kind)


def _product_columns(products: pd.DataFrame) -> list[str]:
    return [
        c.ITEM_ID,
        c.LIST_PRICE,
        c.UNIT_COST,
        c.STOCK,
        *([c.NEXT_DELIVERY] if c.NEXT_DELIVERY in products else []),
    ]


def delivery_periods(next_delivery: pd.Series, last_day: pd.Timestamp, period: str) -> np.ndarray:
    """Periods from the one after the data (the one being priced) until the next delivery is
    due: 0 when it is due then; NaN when none is known or it is overdue (a late delivery says
    nothing about when it will come)."""
    due = pd.to_datetime(next_delivery).dt.tz_localize(None).dt.normalize()
    priced = (last_day.tz_localize(None) if last_day.tzinfo else last_day).normalize() + pd.Timedelta(
        days=PERIOD_DAYS[period]
    )
    days = (due - priced).dt.days.to_numpy(float)
    return np.where(days >= 0, days / PERIOD_DAYS[period], np.nan)


def _with_state(table: pd.DataFrame, demand: pd.DataFrame, period: str = "day") -> pd.DataFrame:
    """The price in force, the week-on-month demand change, the stock at the end and, where
    the shop's purchase orders say, the periods until the next delivery."""
    last = demand.sort_values(c.DATE).groupby(c.ITEM_ID, observed=True).tail(1).set_index(c.ITEM_ID)
    items = table[c.ITEM_ID]
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
    if c.NEXT_DELIVERY in table:
        table[DELIVERY_PERIODS] = delivery_periods(table.pop(c.NEXT_DELIVERY), demand[c.DATE].max(), period)
    return table


def next_period_units(fit: PanelFit, frame: pd.DataFrame, period: str) -> pd.Series:
    """Each item's expected units next period at today's prices (its own and its shelf's),
    without a deal or an ad: the demand the policy prices against."""
    last = frame.sort_values(c.DATE).groupby(c.ITEM_ID).tail(1).copy()
    last[PROMO_LAG], last[FEATURE_LAG] = last[c.PROMO].to_numpy(), last[c.FEATURE].to_numpy()
    last[c.PROMO], last[c.FEATURE] = 0.0, 0.0
    last[c.DATE] = last[c.DATE] + pd.Timedelta(days=PERIOD_DAYS[period])
    return pd.Series(predict(fit, last), index=last[c.ITEM_ID].to_numpy())


def build_panel_pricing_model(
    fit: PanelFit,
    frame: pd.DataFrame,
    elasticities: pd.DataFrame,
    demand: pd.DataFrame,
    products: pd.DataFrame,
    settings: PricingSettings,
    currency: str,
    period: str,
) -> PricingModel:
    """The panel model's items: demand next period at today's prices is the reference,
    so the policy's curve D0 (p / p0) ** e starts from the price in force."""
    table = products[_product_columns(products)].merge(
        elasticities.drop(columns=[REFERENCE_PRICE]), on=c.ITEM_ID, how="inner"
    )
    table = _with_state(table, demand.assign(**{c.ITEM_ID: demand[c.ITEM_ID].astype(str)}), period)
    units = next_period_units(fit, frame, period)
    table["daily_units_at_reference"] = table[c.ITEM_ID].map(units).fillna(0).to_numpy(float)
    table[REFERENCE_PRICE] = table["current_price"]
    table[BASE_RATE] = table["daily_units_at_reference"]
    return PricingModel(table, settings, currency, "panel", period=period)
