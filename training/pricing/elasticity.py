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

import sys
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from features.demand import STOCK_OUT, UNITS, VIEWS
from storewise import columns as c
from storewise.columns import (
    BASE_RATE,
    CONSTANT,
    CROSS_ELASTICITY,
    CROSS_HIGH,
    CROSS_LOW,
    CURVATURE,
    DEMAND_SHAPE,
    ELASTICITY,
    EVIDENCE,
    EXPOSURE,
    HIGH,
    LOW,
    OBSERVED_HIGH,
    OBSERVED_LOW,
    RAW,
    RAW_SE,
    REFERENCE_PRICE,
    SD,
    SEMI_LOG,
    SHELF,
)
from storewise.settings import ElasticityConfig
from training.pricing.cross import CrossFinding, shelf_index, wald_finding
from training.pricing.glm import Panel, fit_panel_poisson

SHELF_INDEX = "shelf_index"
# the table's attrs: the spread between items the pooling used (None: each category its own)
PRIOR_SPREAD = "prior_spread"
CURVATURE_TERM = "log_price_squared"

Z90 = 1.645


def add_exposure(demand: pd.DataFrame, kind: str = "auto") -> tuple[pd.DataFrame, str]:
    """The exposure column and which one was used ('views' or 'shop index')."""
    use_views = kind == "views" or (kind == "auto" and VIEWS in demand and demand[VIEWS].sum() > 0)
    if use_views:
        return demand.assign(**{EXPOSURE: demand[VIEWS].astype(float)}), "views"
    daily = demand.groupby(c.DATE)[UNITS].sum()
    index = daily / daily[daily > 0].mean()
    return demand.assign(**{EXPOSURE: demand[c.DATE].map(index).to_numpy(float)}), "shop index"


@dataclass(frozen=True)
class ItemFit:
    elasticity: float  # at the reference price
    se: float
    base_rate: float
    promo_effect: float
    extra: dict[str, tuple[float, float]]  # term -> (coefficient, standard error)
    log_likelihood: np.ndarray  # per row (day)


def price_regressor(rows: pd.DataFrame, shape: str = CONSTANT) -> np.ndarray:
    """The price term whose coefficient is the elasticity at the reference price:
    log(p / reference) for constant elasticity, p / reference - 1 for semi-log demand."""
    relative = (rows[c.PRICE] / rows[REFERENCE_PRICE]).to_numpy(float)
    return relative - 1 if shape == SEMI_LOG else np.log(relative)


def fit_item(
    rows: pd.DataFrame, ridge: float, controls: bool, extra: tuple[str, ...] = (), shape: str = CONSTANT
) -> ItemFit | None:
    """An item's Poisson GLM, or None if it cannot fit; `extra` terms (columns of `rows`:
    the shelf index, the squared log price) sit beside the log price.

    With views as exposure, promotion traffic, season and trend are already in the
    exposure, and a promotion flag would only compete with the price for the same moves
    (a promotion *is* a price cut), so price is the only regressor. With the shop index,
    promotion and trend are controls."""
    columns = [price_regressor(rows, shape)]
    columns += [rows[term].to_numpy(float) for term in extra]
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
    se = np.sqrt(np.maximum(np.diag(covariance), 0) * dispersion)
    return ItemFit(
        elasticity=float(coefficients[0]),
        se=float(se[1]),
        base_rate=float(np.exp(model.intercept_)),
        promo_effect=float(coefficients[1 + len(extra)]) if keep_promo else 0.0,
        extra={term: (float(coefficients[1 + i]), float(se[2 + i])) for i, term in enumerate(extra)},
        log_likelihood=y * np.log(np.maximum(mean, 1e-300)) - mean,  # Poisson, up to log(y!)
    )


def estimate_elasticities(
    demand: pd.DataFrame, products: pd.DataFrame, settings: ElasticityConfig
) -> tuple[pd.DataFrame, str]:
    """One row per product: raw and pooled elasticity, 90% interval, evidence, base rate;
    with cross effects or curvature where the data supports them (their findings are in
    the table's `attrs["findings"]`)."""
    frame, exposure_kind = add_exposure(demand, settings.exposure)
    category = products.set_index(c.ITEM_ID)[c.CATEGORY]
    frame[SHELF_INDEX] = _category_index(frame, category)
    frame = frame[~frame[STOCK_OUT].astype(bool) & (frame[EXPOSURE] > 0)].copy()
    reference = frame.groupby(c.ITEM_ID, observed=True)[c.PRICE].median()
    frame[REFERENCE_PRICE] = frame[c.ITEM_ID].map(reference).astype(float)
    frame[CURVATURE_TERM] = np.log(frame[c.PRICE] / frame[REFERENCE_PRICE]) ** 2
    frame["t"] = (frame[c.DATE] - frame[c.DATE].min()).dt.days
    with threadpool_limits(limits=1):
        # thousands of tiny fits: OpenMP threads cost far more to start than they save
        shape, shape_finding = choose_shape(frame, settings, exposure_kind)
        table = pd.DataFrame(_fit_items(frame, reference, category, settings, exposure_kind, shape))
        table = pd.concat([table, _unseen(products, set(table.get(c.ITEM_ID, [])))], ignore_index=True)
        table, findings = with_extensions(frame, table, settings, exposure_kind, shape)
        findings, pooled = with_pooled_shelf(frame, table, findings, settings, exposure_kind, shape)
        findings[DEMAND_SHAPE] = shape_finding
    table = pool(table, settings)
    spread = table.attrs[PRIOR_SPREAD]
    if pooled is not None or f"{SHELF_INDEX}_effect" in table:
        kept = findings.get(SHELF_INDEX) is not None and findings[SHELF_INDEX].used
        table = _pooled_cross(table, kept, pooled)
    if findings.get(CURVATURE_TERM) is not None and findings[CURVATURE_TERM].used:
        table[CURVATURE] = shrunk(table, f"{CURVATURE_TERM}_effect", settings)
    table[DEMAND_SHAPE] = shape
    table.attrs["findings"] = findings
    table.attrs[PRIOR_SPREAD] = spread
    return table, exposure_kind


def choose_shape(
    frame: pd.DataFrame, settings: ElasticityConfig, exposure_kind: str
) -> tuple[str, CrossFinding]:
    """The shop's demand shape and the finding that decided it.

    Constant elasticity and semi-log demand have the same number of terms and neither
    nests the other, so their log-likelihoods are compared as in Vuong's test, with items
    as the units (an item's days are not independent of each other): each of the
    `shape_test_items` items with evidence and the most units gives the sum over its days
    of the semi-log fit's log-likelihood minus the constant one's, and a one-sided t test
    on those sums (z = mean / sd x sqrt(n), n - 1 degrees of freedom) must favour semi-log
    at `shape_test_level`; else constant elasticity, the default the rest of the policy
    was built on."""
    if settings.shape != "auto":
        return settings.shape, CrossFinding(
            settings.shape == SEMI_LOG, f"demand shape: {settings.shape} by configuration"
        )
    groups = frame.groupby(c.ITEM_ID, observed=True)
    units = groups[UNITS].sum().sort_values(ascending=False, kind="stable")
    differences = []
    for item in units.index[units >= settings.min_units]:
        rows = groups.get_group(item)
        if np.log(rows[c.PRICE] / rows[REFERENCE_PRICE]).std() < settings.min_log_price_sd:
            continue
        fits = [
            fit_item(rows, settings.ridge, exposure_kind != "views", shape=s) for s in (CONSTANT, SEMI_LOG)
        ]
        if fits[0] is not None and fits[1] is not None:
            differences.append(float(np.sum(fits[1].log_likelihood - fits[0].log_likelihood)))
        if len(differences) >= settings.shape_test_items:
            break
    per_item = np.array(differences)
    if len(per_item) < 3 or per_item.std(ddof=1) == 0:
        return CONSTANT, CrossFinding(
            False, "demand shape: constant elasticity (too few items to compare the shapes on)"
        )
    z = float(per_item.mean() / per_item.std(ddof=1) * np.sqrt(len(per_item)))
    p_value = float(stats.t.sf(z, len(per_item) - 1))
    semi_log = p_value < settings.shape_test_level
    reason = (
        f"demand shape: {'semi-log' if semi_log else 'constant elasticity'} (Vuong-type z = {z:+.2f} for "
        f"semi-log over {len(per_item)} items, p = {p_value:.2g})"
    )
    return (SEMI_LOG if semi_log else CONSTANT), CrossFinding(semi_log, reason, p_value=p_value)


def _unseen(products: pd.DataFrame, seen: set[object]) -> pd.DataFrame:
    """Items with no usable day at all (never sold, never seen) still get a row: their
    category's elasticity, no evidence of their own, the list price as reference."""
    rows = products[~products[c.ITEM_ID].isin(seen)]
    return pd.DataFrame(
        {
            c.ITEM_ID: rows[c.ITEM_ID].to_numpy(),
            c.CATEGORY: rows[c.CATEGORY].to_numpy(),
            REFERENCE_PRICE: rows[c.LIST_PRICE].to_numpy(float),
            RAW: np.nan,
            RAW_SE: np.nan,
            BASE_RATE: 0.0,
            "units": 0,
            "log_price_sd": 0.0,
            "days": 0,
            OBSERVED_LOW: np.nan,
            OBSERVED_HIGH: np.nan,
        }
    )


def _fit_items(
    frame: pd.DataFrame,
    reference: pd.Series,
    category: pd.Series,
    settings: ElasticityConfig,
    exposure_kind: str,
    shape: str = CONSTANT,
) -> list[dict[str, object]]:
    results = []
    groups = frame.groupby(c.ITEM_ID, observed=True, sort=False)
    for item, rows in tqdm(groups, desc="fitting elasticities", unit="item", file=sys.stderr, mininterval=1):
        log_price_sd = float(np.log(rows[c.PRICE] / rows[REFERENCE_PRICE]).std())
        units = int(rows[UNITS].sum())
        fitted = None
        if units >= settings.min_units and log_price_sd >= settings.min_log_price_sd:
            fitted = fit_item(rows, settings.ridge, controls=exposure_kind != "views", shape=shape)
        base_rate = float(rows[UNITS].sum() / rows[EXPOSURE].sum()) if rows[EXPOSURE].sum() > 0 else 0.0
        sold_at = rows.loc[rows[UNITS].to_numpy() > 0, c.PRICE]
        results.append(
            {
                c.ITEM_ID: item,
                c.CATEGORY: category.get(item, "unknown"),
                REFERENCE_PRICE: float(reference[item]),
                RAW: fitted.elasticity if fitted else np.nan,
                RAW_SE: fitted.se if fitted else np.nan,
                BASE_RATE: fitted.base_rate if fitted else base_rate,
                "units": units,
                "log_price_sd": log_price_sd,
                "days": len(rows),
                OBSERVED_LOW: float(sold_at.min()) if len(sold_at) else np.nan,
                OBSERVED_HIGH: float(sold_at.max()) if len(sold_at) else np.nan,
            }
        )
    return results


def _category_index(demand: pd.DataFrame, category: pd.Series) -> np.ndarray:
    """Each day, the mean log price (relative to each item's median) of the other items
    of the item's category: what a substitute's price cut does."""
    items = demand[c.ITEM_ID].astype(str)
    log_price = np.log(demand[c.PRICE].astype(float))
    relative = log_price - log_price.groupby(items.to_numpy()).transform("median")
    return shelf_index(items.map(category).fillna("unknown"), demand[c.DATE], relative)


EXTENSION_NAMES = {SHELF_INDEX: "cross-price effects", CURVATURE_TERM: "curvature"}


def _refit(
    frame: pd.DataFrame,
    table: pd.DataFrame,
    settings: ElasticityConfig,
    exposure_kind: str,
    extra: tuple[str, ...],
    shape: str = CONSTANT,
) -> dict[object, ItemFit]:
    """The items with evidence of their own, refitted with `extra` terms beside the price."""
    with_evidence = set(table.loc[table[RAW].notna(), c.ITEM_ID])
    fits = {}
    for item, rows in frame.groupby(c.ITEM_ID, observed=True, sort=False):
        if item in with_evidence and all(rows[term].std() > 0 for term in extra):
            fit = fit_item(rows, settings.ridge, controls=exposure_kind != "views", extra=extra, shape=shape)
            if fit is not None and all(fit.extra[term][1] > 0 for term in extra):
                fits[item] = fit
    return fits


def with_extensions(
    frame: pd.DataFrame,
    table: pd.DataFrame,
    settings: ElasticityConfig,
    exposure_kind: str,
    shape: str = CONSTANT,
) -> tuple[pd.DataFrame, dict[str, CrossFinding]]:
    """Test each extension (cross-price effects through the category's shelf index, a
    curvature of log demand in log price) by refitting the items with it; keep those the
    data supports (or configuration forces) and take the elasticities from a refit with
    all of them."""
    findings: dict[str, CrossFinding] = {}
    for term, mode in ((SHELF_INDEX, settings.cross_effects), (CURVATURE_TERM, settings.curvature)):
        if mode == "off":
            continue
        fits = _refit(frame, table, settings, exposure_kind, (term,), shape)
        if not fits:
            findings[term] = CrossFinding(False, f"{EXTENSION_NAMES[term]}: nothing to estimate")
            continue
        values = np.array([fit.extra[term][0] for fit in fits.values()])
        variances = np.array([fit.extra[term][1] ** 2 for fit in fits.values()])  # independent fits
        finding = wald_finding(values, variances, settings.cross_test_level, "items")
        findings[term] = (
            finding
            if mode == "auto"
            else replace(finding, used=True, reason=f"on by configuration ({finding.reason})")
        )
    used = tuple(term for term, finding in findings.items() if finding.used)
    if not used:
        return table, findings
    return _with_refit(table, _refit(frame, table, settings, exposure_kind, used, shape), used), findings


def pooled_shelf_effect(
    frame: pd.DataFrame, elasticity: pd.Series, exposure_kind: str, shape: str = CONSTANT
) -> tuple[float, float] | None:
    """One shelf effect shared by every item (estimate, standard error), or None: a Poisson
    regression over all items whose shelf index moves, with a level per item (profiled out),
    each item's own price effect held at its pooled elasticity (an offset, beside the log
    exposure) and, with the shop index as exposure, promotion and trend as shared controls.

    Items that never change their own price are in it: their sales answer to the others'
    prices alone, the cleanest view of a cross effect, which the per-item test (items with
    price evidence of their own only, one effect each) leaves out."""
    moving = frame.groupby(c.ITEM_ID, observed=True)[SHELF_INDEX].transform("std").fillna(0) > 0
    rows = frame[moving.to_numpy() & frame[c.ITEM_ID].isin(elasticity.index).to_numpy()]
    if rows.empty:
        return None
    items, series = np.unique(rows[c.ITEM_ID].astype(str).to_numpy(), return_inverse=True)
    own = rows[c.ITEM_ID].astype(str).map(elasticity.set_axis(elasticity.index.astype(str))).to_numpy(float)
    offset = np.log(rows[EXPOSURE].to_numpy(float)) + own * price_regressor(rows, shape)
    columns = [rows[SHELF_INDEX].to_numpy(float)]
    if exposure_kind != "views":
        columns += [rows[c.PROMO].astype(float).to_numpy(), ((rows["t"] - rows["t"].mean()) / 365).to_numpy()]
    x = np.column_stack(columns)
    keep = x.std(axis=0) > 0
    keep[0] = True
    fit = fit_panel_poisson(Panel(x[:, keep], rows[UNITS].to_numpy(float), series, len(items), offset=offset))
    se = float(np.sqrt(max(fit.covariance[0, 0], 0.0)))
    return (float(fit.beta[0]), se) if se > 0 and np.isfinite(fit.beta[0]) else None


def with_pooled_shelf(
    frame: pd.DataFrame,
    table: pd.DataFrame,
    findings: dict[str, CrossFinding],
    settings: ElasticityConfig,
    exposure_kind: str,
    shape: str = CONSTANT,
) -> tuple[dict[str, CrossFinding], tuple[float, float] | None]:
    """Where the per-item test left cross effects out (too few items vary their prices for
    one effect each), test one shelf effect pooled over every item instead: the finding,
    and the estimate with its standard error (every category's effect; kept when the test
    rejects zero at the same level, its interval kept either way)."""
    per_item = findings.get(SHELF_INDEX)
    if settings.cross_effects != "auto" or per_item is None or per_item.used:
        return findings, None
    estimate = pooled_shelf_effect(
        frame, pool(table, settings).set_index(c.ITEM_ID)[ELASTICITY], exposure_kind, shape
    )
    if estimate is None:
        return findings, None
    effect, se = estimate
    pooled = wald_finding(np.array([effect]), np.array([[se**2]]), settings.cross_test_level, "pooled")
    verdict = "supported" if pooled.used else "not supported"
    reason = (
        f"per item {per_item.reason}; one effect pooled over all items: {effect:.2f} (se {se:.2f}, "
        f"Wald chi2 {pooled.wald:.1f} on 1 df, p = {pooled.p_value:.2g}): {verdict}"
    )
    return {**findings, SHELF_INDEX: replace(pooled, reason=reason)}, estimate


def _with_refit(table: pd.DataFrame, fits: dict[object, ItemFit], terms: tuple[str, ...]) -> pd.DataFrame:
    table = table.copy()
    fit_of = table[c.ITEM_ID].map(fits)
    has = fit_of.notna().to_numpy()
    chosen = list(fit_of[has])
    table.loc[has, RAW] = [fit.elasticity for fit in chosen]
    table.loc[has, RAW_SE] = [fit.se for fit in chosen]
    table.loc[has, BASE_RATE] = [fit.base_rate for fit in chosen]
    for term in terms:
        for position, column in ((0, f"{term}_effect"), (1, f"{term}_effect_se")):
            table[column] = np.nan
            table.loc[has, column] = [fit.extra[term][position] for fit in chosen]
    return table


def _pooled_cross(table: pd.DataFrame, kept: bool, pooled: tuple[float, float] | None) -> pd.DataFrame:
    """Each category's shelf effect shared by its items, as the elasticity to each other
    item's price, with its 90% interval: the effect pooled over all items where given,
    else the precision-weighted mean of the category's items' effects. An effect the test
    did not keep is 0 with that interval around it (the policy's cautious end)."""
    if pooled is not None:
        names = table[c.CATEGORY].unique()
        category_effect = pd.Series(pooled[0], index=names)
        category_se = pd.Series(pooled[1], index=names)
    else:
        effect, se = table[f"{SHELF_INDEX}_effect"], table[f"{SHELF_INDEX}_effect_se"]
        usable = effect.notna() & (se > 0)
        weight = np.where(usable, 1 / np.maximum(se.fillna(1.0), 1e-6) ** 2, 0.0)
        weighted = pd.DataFrame(
            {"w": weight, "wg": weight * effect.fillna(0.0), c.CATEGORY: table[c.CATEGORY]}
        )
        sums = weighted.groupby(c.CATEGORY)[["w", "wg"]].sum()
        category_effect = (sums["wg"] / sums["w"].where(sums["w"] > 0)).fillna(0.0)
        category_se = (1 / np.sqrt(sums["w"].where(sums["w"] > 0))).fillna(0.0)
    others = table.groupby(c.CATEGORY)[c.ITEM_ID].transform("size").to_numpy() - 1
    per_other = np.where(others > 0, 1 / np.maximum(others, 1), 0.0)
    center = table[c.CATEGORY].map(category_effect).to_numpy(float)
    spread = Z90 * table[c.CATEGORY].map(category_se).to_numpy(float)
    table[SHELF] = table[c.CATEGORY].to_numpy()
    table[CROSS_ELASTICITY] = center * per_other if kept else 0.0
    table[CROSS_LOW] = (center - spread) * per_other
    table[CROSS_HIGH] = (center + spread) * per_other
    return table


def shrunk(table: pd.DataFrame, column: str, settings: ElasticityConfig) -> np.ndarray:
    """Empirical-Bayes posterior means of a per-item estimate (with `<column>_se`) towards
    its category's precision-weighted mean (0 for items without an estimate)."""
    rows = pd.DataFrame({RAW: table[column], RAW_SE: table[f"{column}_se"], c.CATEGORY: table[c.CATEGORY]})
    usable = rows[RAW].notna() & (rows[RAW_SE] > 0)
    global_prior = _prior(rows[usable], settings, fallback=(0.0, 1.0))
    priors = {
        name: _prior(group[usable.loc[group.index]], settings, fallback=global_prior)
        for name, group in rows.groupby(c.CATEGORY)
    }
    mean = rows[c.CATEGORY].map({name: prior[0] for name, prior in priors.items()}).to_numpy(float)
    sd = rows[c.CATEGORY].map({name: prior[1] for name, prior in priors.items()}).to_numpy(float)
    precision = np.where(usable, 1 / np.maximum(rows[RAW_SE].fillna(1.0).to_numpy(float), 1e-6) ** 2, 0.0)
    return np.where(
        usable,
        (rows[RAW].fillna(0.0).to_numpy(float) * precision + mean / sd**2) / (precision + 1 / sd**2),
        mean,
    )


def pool(table: pd.DataFrame, settings: ElasticityConfig) -> pd.DataFrame:
    """Empirical-Bayes shrinkage of each raw elasticity towards its category."""
    table = table.copy()
    usable = table[RAW].notna() & np.isfinite(table[RAW_SE]) & (table[RAW_SE] > 0)
    global_prior = _prior(table[usable], settings)
    between = _between(table[usable], settings)
    priors = {
        name: _prior(group[usable.loc[group.index]], settings, fallback=global_prior, between=between)
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
    table.attrs[PRIOR_SPREAD] = float(np.sqrt(between)) if between is not None else None
    return table


def _between(rows: pd.DataFrame, settings: ElasticityConfig) -> float | None:
    """The variance between items every category's prior shares: the configured spread
    squared, the shop's estimate, or None (each category estimates its own)."""
    if settings.prior_spread == "category":
        return None
    if settings.prior_spread == "shop":
        return _shop_between(rows, settings)
    return float(settings.prior_spread) ** 2


def _prior(
    rows: pd.DataFrame,
    settings: ElasticityConfig,
    fallback: tuple[float, float] | None = None,
    between: float | None = None,
) -> tuple[float, float]:
    """(mean, sd) of a category's elasticities: precision-weighted mean; variance between
    items the shop's (`between`) or else the category's own by the method of moments (never
    below min_prior_sd squared), plus the variance of the mean itself."""
    if len(rows) < 2:
        return fallback if fallback is not None else (-1.5, 1.0)
    weights = 1 / rows[RAW_SE].to_numpy() ** 2
    values = rows[RAW].to_numpy()
    mean = float(np.sum(weights * values) / weights.sum())
    if between is None:
        between = max(float(np.var(values) - np.mean(rows[RAW_SE].to_numpy() ** 2)), settings.min_prior_sd**2)
    # the category mean is itself estimated: its variance widens the prior
    mean_variance = 1 / float(np.sum(1 / (rows[RAW_SE].to_numpy() ** 2 + between)))
    return mean, float(np.sqrt(between + mean_variance))


def _moments_between(
    deviations: np.ndarray, se: np.ndarray, groups: int, settings: ElasticityConfig
) -> float:
    """The variance between items beyond their estimates' own noise (method of moments):
    deviations from their group's mean over the degrees of freedom left, less the mean
    squared standard error; never below min_prior_sd squared."""
    spread = float(np.sum(deviations**2) / max(len(deviations) - groups, 1))
    return max(spread - float(np.mean(se**2)), settings.min_prior_sd**2)


def _shop_between(rows: pd.DataFrame, settings: ElasticityConfig) -> float | None:
    """One variance between items for every category (the one-way random-effects model with
    a common variance): each item's deviation from its category's mean, over every category
    with two items or more. None when no category has two."""
    sizes = rows.groupby(c.CATEGORY)[RAW].transform("size").to_numpy()
    rows = rows[sizes >= 2]
    if rows.empty:
        return None
    deviations = rows[RAW] - rows.groupby(c.CATEGORY)[RAW].transform("mean")
    groups = rows[c.CATEGORY].nunique()
    return _moments_between(deviations.to_numpy(float), rows[RAW_SE].to_numpy(float), groups, settings)
