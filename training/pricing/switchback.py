"""The elasticity from a switchback price test: prices randomized by day, not by customer.

A shop's own price changes follow seasons, promotions and fading items, which move demand
too; that is what makes an observational elasticity hard. A switchback test draws each
test item's price (base x (1 - step) or x (1 + step)) by a fair coin per item and day
(storewise/experiments.py), so on test days the price is independent of everything else
that moves demand, and a plain regression of units on price identifies the elasticity:
per item a Poisson GLM, log E[units] = log(exposure) + a + e log(price), with the item's
storefront views as exposure when the shop records them (per-view demand: traffic drops
out), its standard error from the Fisher information scaled by the Pearson overdispersion
(units come in baskets), and a normal interval at `confidence`. Days the item was out of
stock are censored demand and left out.

`with_price_tests` puts these estimates in place of the observational ones for the items
tested (`storewise train pricing` calls it): a randomized estimate is unconfounded, where
the observational one can only be adjusted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy.stats import norm

from inference.experiments import read_price_test
from inference.registry import PRICING, TrackingUnavailableError, configure
from storewise import columns as c
from storewise.columns import DEMAND_SHAPE, ELASTICITY, EVIDENCE, HIGH, LOW, REFERENCE_PRICE, SD, SEMI_LOG
from storewise.experiments import PriceTest, price_arm
from storewise.service_logs import PRICE_AUDIT, log_files
from storewise.shop import ShopPaths

UNITS, VIEWS, STOCK_OUT = "units", "views", "stock_out"
ARM, EXPOSURE = "arm", "exposure"
SWITCHBACK = "switchback"
MIN_DAYS = 6


@dataclass(frozen=True)
class SwitchbackEstimate:
    item_id: str
    elasticity: float
    se: float
    low: float
    high: float
    days: int
    units: int
    median_price: float  # where the test measured its (constant) elasticity


def fit_poisson(
    log_price: np.ndarray, units: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients [intercept, slope], their covariance) of a Poisson GLM by Newton's
    method, the covariance scaled by the Pearson dispersion (at least 1)."""
    design = np.column_stack([np.ones_like(log_price), log_price])
    beta = np.array([math.log(max(units.mean(), 1e-3)) - float(offset.mean()), 0.0])
    for _ in range(50):
        mean = np.exp(np.clip(design @ beta + offset, -30, 30))
        gradient = design.T @ (units - mean)
        information = design.T @ (design * mean[:, None])
        step = np.linalg.solve(information + 1e-9 * np.eye(2), gradient)
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    mean = np.exp(np.clip(design @ beta + offset, -30, 30))
    dispersion = max(
        float(np.sum((units - mean) ** 2 / np.maximum(mean, 1e-12)) / max(len(units) - 2, 1)), 1.0
    )
    covariance = np.linalg.inv(design.T @ (design * mean[:, None]) + 1e-9 * np.eye(2)) * dispersion
    return beta, covariance


def estimate(rows: pd.DataFrame, confidence: float = 0.90) -> SwitchbackEstimate | None:
    """One item's elasticity from its test days (columns: price, units, optional views and
    stock_out); None with fewer than MIN_DAYS usable days or a single price."""
    usable = rows
    if STOCK_OUT in rows:
        usable = usable[~usable[STOCK_OUT].astype(bool)]
    if VIEWS in usable:
        usable = usable[usable[VIEWS] > 0]
    prices = usable[c.PRICE].to_numpy(float)
    if len(usable) < MIN_DAYS or np.unique(np.round(prices, 2)).size < 2:
        return None
    offset = np.log(usable[VIEWS].to_numpy(float)) if VIEWS in usable else np.zeros(len(usable))
    log_price = np.log(prices / np.median(prices))
    units = usable[UNITS].to_numpy(float)
    beta, covariance = fit_poisson(log_price, units, offset)
    se = float(math.sqrt(covariance[1, 1]))
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    return SwitchbackEstimate(
        str(rows[c.ITEM_ID].iloc[0]),
        float(beta[1]),
        se,
        float(beta[1] - z * se),
        float(beta[1] + z * se),
        len(usable),
        int(units.sum()),
        float(np.median(prices)),
    )


def switchback_days(demand: pd.DataFrame, test: PriceTest, audited: pd.Series | None = None) -> pd.DataFrame:
    """The demand rows of the test's items on its days, with each day's arm; the price is
    the one the service gave (the audit log's, when it has the day) else the price in force."""
    days = pd.to_datetime(demand[c.DATE])
    first, last = pd.Timestamp(test.start), pd.Timestamp(test.end)
    if test.stopped_at:
        last = min(last, pd.Timestamp(test.stopped_at[:10]))
    naive = days.dt.tz_localize(None) if days.dt.tz is not None else days
    rows = demand[demand[c.ITEM_ID].isin(test.items) & (naive >= first) & (naive <= last)].copy()
    day_of = naive.loc[rows.index].dt.date
    rows[ARM] = [price_arm(test, str(item), day) for item, day in zip(rows[c.ITEM_ID], day_of, strict=True)]
    if audited is not None and len(audited):
        keys = pd.MultiIndex.from_arrays([rows[c.ITEM_ID].astype(str), day_of.astype(str)])
        given = audited.reindex(keys).to_numpy()
        rows[c.PRICE] = np.where(pd.notna(given), given, rows[c.PRICE].to_numpy(float))
    return rows


def audited_prices(shop: ShopPaths, test: PriceTest) -> pd.Series:
    """The median base price the service gave per (item, shop day) under this test."""
    records = []
    for path in log_files(shop.logs, PRICE_AUDIT):
        for line in path.read_text(encoding="utf-8").splitlines():
            if f'"price_test":"{test.id}"' in line:
                record = json.loads(line)
                records.append((record["item_id"], str(record["at"])[:10], float(record["base_price"])))
    if not records:
        return pd.Series(dtype=float)
    frame = pd.DataFrame(records, columns=[c.ITEM_ID, "day", "price"])
    return frame.groupby([c.ITEM_ID, "day"])["price"].median()


def with_price_tests(
    elasticities: pd.DataFrame, demand: pd.DataFrame, shop: ShopPaths, confidence: float = 0.90
) -> pd.DataFrame:
    """The elasticity table with the latest price test's estimates in place of the
    observational ones for the items it tested (column `switchback`: the test's id)."""
    try:
        test = read_price_test(configure(), PRICING)
    except TrackingUnavailableError:
        return elasticities
    if test is None or date.fromisoformat(test.start) > pd.Timestamp(demand[c.DATE].max()).date():
        return elasticities
    return apply_estimates(
        elasticities, switchback_days(demand, test, audited_prices(shop, test)), test.id, confidence
    )


def apply_estimates(
    elasticities: pd.DataFrame, rows: pd.DataFrame, test_id: str, confidence: float
) -> pd.DataFrame:
    table = elasticities.copy()
    if SWITCHBACK not in table:
        table[SWITCHBACK] = None
    for item, item_rows in rows.groupby(c.ITEM_ID, observed=True):
        found = estimate(item_rows, confidence)
        where = table[c.ITEM_ID] == item
        if found is None or not where.any():
            continue
        # semi-log demand: the elasticity grows with the price, and the policy reads it at
        # the reference price (e_r = e_m r / m for a test measured around its median m)
        scale = 1.0
        if DEMAND_SHAPE in table and (table.loc[where, DEMAND_SHAPE] == SEMI_LOG).any():
            scale = float(table.loc[where, REFERENCE_PRICE].iloc[0]) / found.median_price
        values = [found.elasticity, found.se, found.low, found.high]
        table.loc[where, [ELASTICITY, SD, LOW, HIGH]] = [value * scale for value in values]
        table.loc[where, EVIDENCE] = "item"
        table.loc[where, SWITCHBACK] = test_id
    return table
