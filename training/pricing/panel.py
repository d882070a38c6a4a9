"""Elasticities pooled across stores: one Poisson regression over every store x product
series of a shop whose products are sold in several stores (a weekly sales export).

    log E[units] = level(series) + e(product) log p + u(series) log p
                   + deal(product) + feature(product) + g(product) shelf index
                   + season + last period's deal and feature

- `level(series)`: each store x product's own level (a fixed effect, profiled out);
- `e(product)`: the product's own-price elasticity, shared by its stores, and `u(series)`
  the store's deviation from it, partially pooled (a normal prior whose spread is
  estimated from the data, empirical Bayes): a store with little price variation keeps
  close to its product, one with a lot of evidence gets its own;
- `deal`, `feature`: the promotion flags, per product, so the price effect is the effect of
  the price beyond what the deal sign and the ad do by themselves;
- `g(product) shelf index`: cross-price effects. The shelf index is the mean, over the
  other products on the same store's shelf, of their log price relative to their usual
  price: a deal on one brand lowers it and takes sales from the others (g > 0 for
  substitutes). It stays in the model only where the data supports it (a Wald test);
- season (week-of-year Fourier terms, when the data spans a year), weekday (daily
  data) and last period's deal and feature (the dip after a promotion).

Periods a series did not record are left out (no record is not zero sales). Intervals are
from the quasi-likelihood's covariance, scaled by the Pearson dispersion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.demand import RECORDED, UNITS
from storewise import columns as c
from storewise.columns import (
    BASE_RATE,
    CROSS_ELASTICITY,
    ELASTICITY,
    EVIDENCE,
    HIGH,
    LOW,
    OBSERVED_HIGH,
    OBSERVED_LOW,
    RAW,
    RAW_SE,
    REFERENCE_PRICE,
    SD,
)
from storewise.settings import ElasticityConfig, PanelSettings
from training.pricing.cross import CrossFinding, shelf_index, wald_finding
from training.pricing.glm import GlmFit, Panel, fit_panel_poisson

Z90 = 1.645
SHELF_INDEX, LOG_PRICE = "shelf_index", "log_relative_price"
PROMO_LAG, FEATURE_LAG = "promo_lag", "feature_lag"
PER_PRODUCT = ("own_price", "deal", "feature", "shelf")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class PanelSpec:
    """Which terms the regression has."""

    price: bool = True
    cross: bool = True
    harmonics: int = 2
    weekday: bool = False
    lags: bool = True


@dataclass
class PanelFit:
    spec: PanelSpec
    names: list[str]
    glm: GlmFit
    products: list[str]
    item_ids: np.ndarray  # series index -> item id
    trained: np.ndarray  # series with training rows
    slope_sd: float
    cross: CrossFinding = field(default_factory=lambda: CrossFinding(False, "not estimated"))

    def coefficient(self, name: str) -> tuple[float, float]:
        """(estimate, standard error) of a named coefficient; (0, nan) when not in the model."""
        if name not in self.names:
            return 0.0, float("nan")
        at = self.names.index(name)
        return float(self.glm.beta[at]), float(np.sqrt(max(self.glm.covariance[at, at], 0.0)))


def panel_frame(demand: pd.DataFrame, products: pd.DataFrame, train_until: pd.Timestamp) -> pd.DataFrame:
    """One row per item and period with what the regression reads; prices are relative to
    each series' median price up to `train_until` (constants the levels absorb)."""
    frame = demand[[c.ITEM_ID, c.DATE, UNITS, c.PRICE, c.PROMO, c.FEATURE]].copy()
    frame[c.ITEM_ID] = frame[c.ITEM_ID].astype(str)
    frame[RECORDED] = demand[RECORDED].to_numpy() if RECORDED in demand else True
    info = _item_info(products).reindex(frame[c.ITEM_ID].unique())
    frame[c.PRODUCT] = frame[c.ITEM_ID].map(info[c.PRODUCT]).fillna(frame[c.ITEM_ID])
    frame[c.SHELF] = frame[c.ITEM_ID].map(info[c.SHELF]).fillna("")
    frame = frame.sort_values([c.ITEM_ID, c.DATE], kind="stable").reset_index(drop=True)
    seen = frame[frame[RECORDED] & (frame[c.DATE] <= train_until)]
    reference = np.log(seen.groupby(c.ITEM_ID)[c.PRICE].median())
    log_price = np.log(frame[c.PRICE].to_numpy(float))
    frame[LOG_PRICE] = log_price - frame[c.ITEM_ID].map(reference).fillna(pd.Series(log_price)).to_numpy()
    frame[SHELF_INDEX] = _shelf_index(frame)
    frame[c.PROMO] = frame[c.PROMO].astype(float)
    previous = frame.groupby(c.ITEM_ID, sort=False)[[c.PROMO, c.FEATURE]].shift(1).fillna(0.0)
    frame[PROMO_LAG], frame[FEATURE_LAG] = previous[c.PROMO].to_numpy(), previous[c.FEATURE].to_numpy()
    return frame


def _item_info(products: pd.DataFrame) -> pd.DataFrame:
    """Per item: its product (itself without a product column) and its shelf (store and category)."""
    info = products.set_index(products[c.ITEM_ID].astype(str))
    product = info[c.PRODUCT] if c.PRODUCT in info else pd.Series(info.index, index=info.index)
    store = info[c.STORE].fillna("") if c.STORE in info else pd.Series("", index=info.index)
    shelf = store.astype(str) + "|" + info[c.CATEGORY].astype(str)
    return pd.DataFrame({c.PRODUCT: product.fillna(pd.Series(info.index, index=info.index)), c.SHELF: shelf})


def _shelf_index(frame: pd.DataFrame) -> np.ndarray:
    return shelf_index(frame[c.SHELF], frame[c.DATE], frame[LOG_PRICE])


def design(frame: pd.DataFrame, spec: PanelSpec, products: list[str]) -> tuple[np.ndarray, list[str]]:
    """The regressors of `frame`'s rows, and their names."""
    code = pd.Categorical(frame[c.PRODUCT], categories=products).codes
    per_product = {
        "own_price": frame[LOG_PRICE].to_numpy(float) if spec.price else None,
        "deal": frame[c.PROMO].to_numpy(float),
        "feature": frame[c.FEATURE].to_numpy(float),
        "shelf": frame[SHELF_INDEX].to_numpy(float) if spec.price and spec.cross else None,
    }
    columns, names = [], []
    for term in PER_PRODUCT:
        values = per_product[term]
        if values is None:
            continue
        for at, product in enumerate(products):
            columns.append(np.where(code == at, values, 0.0))
            names.append(f"{term}:{product}")
    shared = _shared_terms(frame, spec)
    columns += list(shared.values())
    names += list(shared)
    return np.column_stack(columns), names


def _shared_terms(frame: pd.DataFrame, spec: PanelSpec) -> dict[str, np.ndarray]:
    terms: dict[str, np.ndarray] = {}
    angle = 2 * np.pi * frame[c.DATE].dt.day_of_year.to_numpy(float) / 365.25
    for k in range(1, spec.harmonics + 1):
        terms[f"season_sin{k}"] = np.sin(k * angle)
        terms[f"season_cos{k}"] = np.cos(k * angle)
    if spec.weekday:
        weekday = frame[c.DATE].dt.day_of_week.to_numpy()
        for day in range(1, 7):
            terms[f"weekday{day}"] = (weekday == day).astype(float)
    if spec.lags:
        terms[PROMO_LAG] = frame[PROMO_LAG].to_numpy(float)
        terms[FEATURE_LAG] = frame[FEATURE_LAG].to_numpy(float)
    return terms


def choose_spec(train: pd.DataFrame, config: ElasticityConfig, period: str) -> PanelSpec:
    """Season only with a year of data (else it is the trend); weekdays only for days."""
    span = (train[c.DATE].max() - train[c.DATE].min()).days
    return PanelSpec(
        price=True,
        cross=config.cross_effects != "off",
        harmonics=config.panel.season_harmonics if span >= 365 else 0,
        weekday=period == "day",
        lags=config.panel.lags,
    )


def fit_panel(
    frame: pd.DataFrame, spec: PanelSpec, config: ElasticityConfig, progress: Progress | None = None
) -> PanelFit:
    """Fit on the recorded rows of `frame`; with prices, the store slopes' spread by
    empirical Bayes and the cross effects kept or dropped by the data."""
    say = progress or (lambda _: None)
    fit = _fit(frame, spec, config.panel, say)
    if spec.price and spec.cross and config.cross_effects == "auto":
        fit.cross = cross_finding(fit, config.cross_test_level)
        if not fit.cross.used:
            say("refit without cross effects")
            reason = fit.cross
            fit = _fit(frame, replace(spec, cross=False), config.panel, say)
            fit.cross = reason
    elif spec.price and spec.cross:
        finding = cross_finding(fit, config.cross_test_level)
        fit.cross = replace(finding, used=True, reason=f"on by configuration ({finding.reason})")
    return fit


def _fit(frame: pd.DataFrame, spec: PanelSpec, settings: PanelSettings, say: Progress) -> PanelFit:
    rows = frame[frame[RECORDED].to_numpy(bool)]
    products = sorted(frame[c.PRODUCT].unique())
    item_ids = np.array(sorted(frame[c.ITEM_ID].unique()))
    x, names = design(rows, spec, products)
    varying = x.std(axis=0) > 0  # a product without deals has no deal effect to estimate
    x, names = x[:, varying], [name for name, keep in zip(names, varying, strict=True) if keep]
    series = np.searchsorted(item_ids, rows[c.ITEM_ID].to_numpy())
    y = rows[UNITS].to_numpy(float)
    scale = max(float(y.mean()), 1e-9)  # units in the thousands: fit in units of their mean
    pooled = Panel(x, y / scale, series, len(item_ids))
    say("fit: pooled product effects")
    glm = fit_panel_poisson(pooled)
    slope_sd = 0.0
    if spec.price:
        panel = replace(pooled, z=rows[LOG_PRICE].to_numpy(float))
        glm, slope_sd = _store_slopes(panel, glm, settings, say)
    glm.alpha = glm.alpha + np.log(scale)
    trained = np.bincount(series, minlength=len(item_ids)) > 0
    return PanelFit(spec, names, glm, products, item_ids, trained, slope_sd)


def _store_slopes(
    panel: Panel, pooled: GlmFit, settings: PanelSettings, say: Progress
) -> tuple[GlmFit, float]:
    """Store slopes with a normal prior whose spread is re-estimated each round (EM:
    tau^2 = mean of u^2 + its posterior variance) until it settles."""
    sd = settings.slope_sd_start
    glm = pooled
    start = (pooled.beta, np.zeros(panel.n_series))
    trained = np.bincount(panel.series, minlength=panel.n_series) > 0
    for round_ in range(settings.slope_iterations):
        say(f"fit: store slopes, round {round_ + 1} (spread {sd:.3f})")
        glm = fit_panel_poisson(panel, penalty=pooled.dispersion / sd**2, start=start)
        start = (glm.beta, glm.u)
        new = max(
            float(np.sqrt(np.mean(glm.u[trained] ** 2 + glm.u_variance[trained]))), settings.min_slope_sd
        )
        if abs(new - sd) < 1e-3 * sd:
            return glm, new
        sd = new
    return glm, sd


def cross_finding(fit: PanelFit, level: float) -> CrossFinding:
    """A Wald test that every product's shelf effect is zero."""
    at = [i for i, name in enumerate(fit.names) if name.startswith("shelf:")]
    if not at:
        return CrossFinding(False, "no store has two products on one shelf in a period: nothing to estimate")
    gamma = fit.glm.beta[at]
    covariance = fit.glm.covariance[np.ix_(at, at)]
    return wald_finding(gamma, covariance, level, "products")


def predict(fit: PanelFit, frame: pd.DataFrame) -> np.ndarray:
    """Expected units of each row of `frame` (NaN for a series the fit never saw)."""
    x_all, names = design(frame, fit.spec, fit.products)
    position = {name: i for i, name in enumerate(names)}
    x = x_all[:, [position[name] for name in fit.names]]
    series = np.searchsorted(fit.item_ids, frame[c.ITEM_ID].to_numpy())
    series = np.clip(series, 0, len(fit.item_ids) - 1)
    known = (fit.item_ids[series] == frame[c.ITEM_ID].to_numpy()) & fit.trained[series]
    z = frame[LOG_PRICE].to_numpy(float) if fit.spec.price else None
    with np.errstate(over="ignore"):
        mean = np.exp(fit.glm.linear(x, series, z))
    return np.where(known, mean, np.nan)


def product_table(fit: PanelFit) -> pd.DataFrame:
    """Per product: own-price elasticity (pooled over its stores), shelf (cross-price)
    effect, deal and feature effects, each with its 90% interval."""
    rows = []
    for product in fit.products:
        row: dict[str, object] = {c.PRODUCT: product}
        for term, column in (
            ("own_price", ELASTICITY),
            ("shelf", "shelf_effect"),
            ("deal", "deal_effect"),
            ("feature", "feature_effect"),
        ):
            value, se = fit.coefficient(f"{term}:{product}")
            row[column] = value if f"{term}:{product}" in fit.names else np.nan
            row[f"{column}_low_90"] = value - Z90 * se
            row[f"{column}_high_90"] = value + Z90 * se
        rows.append(row)
    return pd.DataFrame(rows)


def elasticity_table(
    fit: PanelFit, train: pd.DataFrame, min_units: int, min_log_price_sd: float
) -> pd.DataFrame:
    """Per item (store x product): the product's elasticity plus the store's pooled
    deviation, with its 90% interval; evidence 'item' where the series' own prices moved
    enough to say something, 'product' where it leans on its product; the shelf and the
    cross elasticity to each other item of the shelf (the product's shelf effect shared
    among the shelf's other items)."""
    recorded = train[train[RECORDED]]
    grouped = recorded.groupby(c.ITEM_ID)
    sold_at = recorded[recorded[UNITS] > 0].groupby(c.ITEM_ID)[c.PRICE]
    stats_ = pd.DataFrame(
        {
            "units": grouped[UNITS].sum(),
            "log_price_sd": grouped[LOG_PRICE].std().fillna(0.0),
            "days": grouped.size(),
            REFERENCE_PRICE: grouped[c.PRICE].median(),
            OBSERVED_LOW: sold_at.min(),
            OBSERVED_HIGH: sold_at.max(),
        }
    ).reindex(fit.item_ids)
    info = train.drop_duplicates(c.ITEM_ID).set_index(c.ITEM_ID).reindex(fit.item_ids)
    products = product_table(fit).set_index(c.PRODUCT)
    product = info[c.PRODUCT].to_numpy()
    own = products[ELASTICITY].reindex(product).to_numpy(float)
    own_sd = (
        ((products[f"{ELASTICITY}_high_90"] - products[ELASTICITY]) / Z90).reindex(product).to_numpy(float)
    )
    elasticity = own + fit.glm.u
    sd = np.sqrt(own_sd**2 + fit.glm.u_variance)
    shelf_size = train.groupby(c.SHELF)[c.ITEM_ID].nunique()
    others = np.maximum(info[c.SHELF].map(shelf_size).to_numpy(float) - 1, 1)
    shelf_effect = products["shelf_effect"].reindex(product).fillna(0).to_numpy(float)
    own_evidence = (stats_["units"] >= min_units) & (stats_["log_price_sd"] >= min_log_price_sd)
    return pd.DataFrame(
        {
            c.ITEM_ID: fit.item_ids,
            c.PRODUCT: product,
            c.SHELF: info[c.SHELF].to_numpy(),
            c.CATEGORY: info[c.SHELF].str.split("|", n=1).str[1].to_numpy(),
            REFERENCE_PRICE: stats_[REFERENCE_PRICE].to_numpy(float),
            RAW: own,
            RAW_SE: own_sd,
            "store_deviation": fit.glm.u,
            ELASTICITY: elasticity,
            SD: sd,
            LOW: elasticity - Z90 * sd,
            HIGH: elasticity + Z90 * sd,
            EVIDENCE: np.where(own_evidence.to_numpy(), "item", "product"),
            CROSS_ELASTICITY: shelf_effect / others if fit.cross.used else 0.0,
            BASE_RATE: np.nan,
            "units": stats_["units"].fillna(0).to_numpy(),
            "log_price_sd": stats_["log_price_sd"].fillna(0).to_numpy(),
            "days": stats_["days"].fillna(0).to_numpy(),
            OBSERVED_LOW: stats_[OBSERVED_LOW].to_numpy(float),
            OBSERVED_HIGH: stats_[OBSERVED_HIGH].to_numpy(float),
        }
    )
