"""Price elasticities per item, with uncertainty, pooled towards the item's category.

Per item, a scikit-learn Poisson GLM of daily units on log(price / reference price), a
promotion flag and a trend, with an exposure: store views where the shop records them
(so demand is modelled per view and seasonality, weekdays and promotion traffic fall out
of the price effect), else a shop-wide daily index (total units that day / the mean), which
carries the season and the weekday for every item alike. Days out of stock are left out:
their sales are censored, not low demand.

Confounding: shops do not set prices at random (promotions come with peaks and with banner
traffic, markdowns with fading items). The confounders move traffic, so the exposure
takes them out: per view, demand answers to price alone. With the shop index as
exposure, promotion and trend are regressors beside the price, partialled out of the price
effect in the same regression (Frisch-Waugh: the elasticity is identified only from price
moves the controls do not explain), which is the double-ML idea done in one model.

Uncertainty: the GLM's standard error from its Fisher information, scaled by the Pearson
overdispersion (lumpy wholesale demand is far from Poisson). Pooling: an empirical-Bayes
normal prior per category (precision-weighted mean, between-item variance by moments);
each item's elasticity is the posterior mean, its 90% interval the posterior ± 1.645 sd.
Items with too little price variation or sales keep the category's value, flagged
`evidence = "category"`, and the optimizer moves them cautiously.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits

from features.demand import STOCK_OUT, UNITS, VIEWS
from storewise import columns as c
from storewise.columns import (
    BASE_RATE,
    ELASTICITY,
    EVIDENCE,
    EXPOSURE,
    HIGH,
    LOW,
    RAW,
    RAW_SE,
    REFERENCE_PRICE,
    SD,
)
from storewise.settings import ElasticityConfig

Z90 = 1.645


def add_exposure(demand: pd.DataFrame, kind: str = "auto") -> tuple[pd.DataFrame, str]:
    """The exposure column and which one was used ('views' or 'shop index')."""
    use_views = kind == "views" or (kind == "auto" and VIEWS in demand and demand[VIEWS].sum() > 0)
    if use_views:
        return demand.assign(**{EXPOSURE: demand[VIEWS].astype(float)}), "views"
    daily = demand.groupby(c.DATE)[UNITS].sum()
    index = daily / daily[daily > 0].mean()
    return demand.assign(**{EXPOSURE: demand[c.DATE].map(index).to_numpy(float)}), "shop index"


def fit_item(rows: pd.DataFrame, ridge: float, controls: bool) -> tuple[float, float, float, float] | None:
    """(elasticity, its standard error, base rate, promotion effect) or None if it cannot fit.

    With views as exposure, promotion traffic, season and trend are already in the
    exposure, and a promotion flag would only compete with the price for the same moves
    (a promotion *is* a price cut), so price is the only regressor. With the shop index,
    promotion and trend are controls."""
    columns = [np.log(rows[c.PRICE] / rows[REFERENCE_PRICE]).to_numpy()]
    keep_promo = controls and rows[c.PROMO].astype(float).std() > 0
    if keep_promo:
        columns.append(rows[c.PROMO].astype(float).to_numpy())
    if controls:
        columns.append(((rows["t"] - rows["t"].mean()) / 365).to_numpy())
    x = np.column_stack(columns)
    exposure = rows[EXPOSURE].to_numpy(float)
    y = rows[UNITS].to_numpy(float)
    # standardized regressors let lbfgs converge in a few steps at a normal tolerance
    scale = x.std(axis=0)
    scale[scale == 0] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = PoissonRegressor(alpha=ridge, max_iter=300, tol=1e-8).fit(
            x / scale, y / exposure, sample_weight=exposure
        )
    coefficients = model.coef_ / scale
    mean = exposure * model.predict(x / scale)
    design = np.column_stack([np.ones(len(x)), x])
    information = design.T @ (design * mean[:, None])
    try:
        covariance = np.linalg.inv(information + np.eye(len(information)) * 1e-9)
    except np.linalg.LinAlgError:
        return None
    dispersion = max(
        1.0, float(np.sum((y - mean) ** 2 / np.maximum(mean, 1e-9)) / max(len(y) - design.shape[1], 1))
    )
    se = float(np.sqrt(covariance[1, 1] * dispersion))
    promo_effect = float(coefficients[1]) if keep_promo else 0.0
    return float(coefficients[0]), se, float(np.exp(model.intercept_)), promo_effect


def estimate_elasticities(
    demand: pd.DataFrame, products: pd.DataFrame, settings: ElasticityConfig
) -> tuple[pd.DataFrame, str]:
    """One row per product: raw and pooled elasticity, 90% interval, evidence, base rate."""
    frame, exposure_kind = add_exposure(demand, settings.exposure)
    frame = frame[~frame[STOCK_OUT].astype(bool) & (frame[EXPOSURE] > 0)].copy()
    reference = frame.groupby(c.ITEM_ID, observed=True)[c.PRICE].median()
    frame[REFERENCE_PRICE] = frame[c.ITEM_ID].map(reference).astype(float)
    frame["t"] = (frame[c.DATE] - frame[c.DATE].min()).dt.days
    category = products.set_index(c.ITEM_ID)[c.CATEGORY]
    with threadpool_limits(limits=1):
        # thousands of tiny fits: OpenMP threads cost far more to start than they save
        results = _fit_items(frame, reference, category, settings, exposure_kind)
    # items with no usable day at all (never sold, never seen) still get a row: their
    # category's elasticity, no evidence of their own, the list price as reference
    seen = {row[c.ITEM_ID] for row in results}
    for row in products[~products[c.ITEM_ID].isin(seen)].itertuples():
        results.append(
            {
                c.ITEM_ID: getattr(row, c.ITEM_ID),
                c.CATEGORY: getattr(row, c.CATEGORY),
                REFERENCE_PRICE: float(getattr(row, c.LIST_PRICE)),
                RAW: np.nan,
                RAW_SE: np.nan,
                BASE_RATE: 0.0,
                "units": 0,
                "log_price_sd": 0.0,
                "days": 0,
            }
        )
    table = pd.DataFrame(results)
    return pool(table, settings), exposure_kind


def _fit_items(
    frame: pd.DataFrame,
    reference: pd.Series,
    category: pd.Series,
    settings: ElasticityConfig,
    exposure_kind: str,
) -> list[dict[str, object]]:
    results = []
    for item, rows in frame.groupby(c.ITEM_ID, observed=True, sort=False):
        log_price_sd = float(np.log(rows[c.PRICE] / rows[REFERENCE_PRICE]).std())
        units = int(rows[UNITS].sum())
        fitted = None
        if units >= settings.min_units and log_price_sd >= settings.min_log_price_sd:
            fitted = fit_item(rows, settings.ridge, controls=exposure_kind != "views")
        base_rate = float(rows[UNITS].sum() / rows[EXPOSURE].sum()) if rows[EXPOSURE].sum() > 0 else 0.0
        results.append(
            {
                c.ITEM_ID: item,
                c.CATEGORY: category.get(item, "unknown"),
                REFERENCE_PRICE: float(reference[item]),
                RAW: fitted[0] if fitted else np.nan,
                RAW_SE: fitted[1] if fitted else np.nan,
                BASE_RATE: fitted[2] if fitted else base_rate,
                "units": units,
                "log_price_sd": log_price_sd,
                "days": len(rows),
            }
        )
    return results


def pool(table: pd.DataFrame, settings: ElasticityConfig) -> pd.DataFrame:
    """Empirical-Bayes shrinkage of each raw elasticity towards its category."""
    table = table.copy()
    usable = table[RAW].notna() & np.isfinite(table[RAW_SE]) & (table[RAW_SE] > 0)
    global_prior = _prior(table[usable], settings)
    priors = {
        name: _prior(group[usable.loc[group.index]], settings, fallback=global_prior)
        for name, group in table.groupby(c.CATEGORY)
    }
    means = table[c.CATEGORY].map({name: prior[0] for name, prior in priors.items()}).to_numpy(float)
    sds = table[c.CATEGORY].map({name: prior[1] for name, prior in priors.items()}).to_numpy(float)
    raw, se = table[RAW].to_numpy(float), table[RAW_SE].to_numpy(float)
    precision = np.where(usable, 1 / np.maximum(se, 1e-6) ** 2, 0.0)
    prior_precision = 1 / sds**2
    posterior_mean = (np.nan_to_num(raw) * precision + means * prior_precision) / (
        precision + prior_precision
    )
    posterior_sd = np.sqrt(1 / (precision + prior_precision))
    table[ELASTICITY] = posterior_mean
    table[SD] = posterior_sd
    table[LOW] = posterior_mean - Z90 * posterior_sd
    table[HIGH] = posterior_mean + Z90 * posterior_sd
    table[EVIDENCE] = np.where(usable, "item", "category")
    return table


def _prior(
    rows: pd.DataFrame, settings: ElasticityConfig, fallback: tuple[float, float] | None = None
) -> tuple[float, float]:
    """(mean, sd) of a category's elasticities: precision-weighted mean; variance between
    items by the method of moments (never below min_prior_sd squared) plus the variance
    of the mean itself."""
    if len(rows) < 2:
        return fallback if fallback is not None else (-1.5, 1.0)
    weights = 1 / rows[RAW_SE].to_numpy() ** 2
    values = rows[RAW].to_numpy()
    mean = float(np.sum(weights * values) / weights.sum())
    between = max(float(np.var(values) - np.mean(rows[RAW_SE].to_numpy() ** 2)), settings.min_prior_sd**2)
    # the category mean is itself estimated: its variance widens the prior
    mean_variance = 1 / float(np.sum(1 / (rows[RAW_SE].to_numpy() ** 2 + between)))
    return mean, float(np.sqrt(between + mean_variance))
