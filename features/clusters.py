"""Behavioural clusters of customers, with a profile a marketer can read.

Each customer who bought something is described by their RFM values, basket size, how
much of their buying was on promotion, and their share of spend per category. The
columns are log-scaled where skewed and standardized; KMeans runs for every k in the
configured range and the k with the best silhouette score is kept (the criterion: how
much closer customers are to their own cluster than to the next one). Profiles give each
cluster's size, typical values and a label made from what sets it apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from features.rfm import FREQUENCY, MONETARY, RECENCY_DAYS
from storewise import columns as c
from storewise.settings import ClusterSettings

log = logging.getLogger(__name__)

BASKET_UNITS = "basket_units"
DISCOUNT_SHARE = "discount_share"
CLUSTER = "cluster"
SHARE_PREFIX = "share_"
LOG_SCALED = (RECENCY_DAYS, FREQUENCY, MONETARY, BASKET_UNITS)


@dataclass(frozen=True)
class Clustering:
    assignments: pd.DataFrame  # customer_id, cluster
    profiles: pd.DataFrame  # one row per cluster
    selection: pd.DataFrame  # k, silhouette


def behaviour(
    orders: pd.DataFrame,
    products: pd.DataFrame,
    rfm: pd.DataFrame,
    discounted: pd.Series,
    top_categories: int,
) -> pd.DataFrame:
    """Behaviour per customer (those in `rfm`). `discounted` flags order lines bought on
    promotion or below list price (aligned with `orders`)."""
    sales_mask = ~orders[c.RETURNED] & orders[c.CUSTOMER_ID].notna()
    sales = orders[sales_mask].assign(discounted=discounted[sales_mask].to_numpy())
    category = products.set_index(c.ITEM_ID)[c.CATEGORY]
    sales = sales.assign(
        category=sales[c.ITEM_ID].map(category).fillna("unknown"),
        spend=sales[c.QUANTITY] * sales[c.UNIT_PRICE],
    )
    units = sales.groupby(c.CUSTOMER_ID)[c.QUANTITY].sum()
    table = rfm.set_index(c.CUSTOMER_ID)[[RECENCY_DAYS, FREQUENCY, MONETARY]].copy()
    table[MONETARY] = table[MONETARY].clip(lower=0)
    table[BASKET_UNITS] = (units / table[FREQUENCY]).reindex(table.index)
    discounted_units = sales[sales["discounted"]].groupby(c.CUSTOMER_ID)[c.QUANTITY].sum()
    table[DISCOUNT_SHARE] = (
        discounted_units.reindex(table.index, fill_value=0) / units.reindex(table.index)
    ).fillna(0)
    top = sales.groupby("category")["spend"].sum().nlargest(top_categories).index
    sales["category"] = sales["category"].where(sales["category"].isin(top), "other")
    spend = sales.pivot_table(
        index=c.CUSTOMER_ID, columns="category", values="spend", aggfunc="sum", fill_value=0
    )
    shares = spend.div(spend.sum(axis=1).where(lambda total: total > 0), axis=0).fillna(0)
    shares.columns = [f"{SHARE_PREFIX}{name}" for name in shares.columns]
    return table.join(shares.reindex(table.index, fill_value=0)).fillna(0)


def cluster_customers(table: pd.DataFrame, settings: ClusterSettings) -> Clustering:
    """KMeans for k = min..max clusters, keeping the best silhouette. A shop with too few
    buyers to split (fewer than twice `min_clusters`) gets one cluster of everyone, and a
    selection table that says so, rather than an error that would stop the whole build."""
    matrix = table.copy()
    for column in LOG_SCALED:
        matrix[column] = np.log1p(matrix[column])
    scaled = (
        StandardScaler().fit_transform(matrix.to_numpy(float))
        if len(table)
        else np.zeros((0, table.shape[1]))
    )
    if len(table) < settings.min_clusters * 2:
        log.warning("%s customers with purchases: too few to cluster, all in one cluster", len(table))
        labels = np.zeros(len(table), int)
        assignments = pd.DataFrame({c.CUSTOMER_ID: table.index, CLUSTER: labels})
        selection = pd.DataFrame({"k": [1], "silhouette": [np.nan], "chosen": [True]})
        return Clustering(assignments, profile(table, labels, scaled), selection)
    rng = np.random.default_rng(settings.seed)
    sample = rng.choice(len(scaled), size=min(len(scaled), settings.silhouette_sample), replace=False)
    scores, fits = [], {}
    for k in range(settings.min_clusters, min(settings.max_clusters, len(table) - 1) + 1):
        model = KMeans(n_clusters=k, n_init=4, random_state=settings.seed).fit(scaled)
        fits[k] = model
        scores.append({"k": k, "silhouette": float(silhouette_score(scaled[sample], model.labels_[sample]))})
    selection = pd.DataFrame(scores)
    best_k = int(selection.loc[selection["silhouette"].idxmax(), "k"])
    labels = _relabel_by_size(fits[best_k].labels_)
    assignments = pd.DataFrame({c.CUSTOMER_ID: table.index, CLUSTER: labels})
    selection["chosen"] = selection["k"] == best_k
    return Clustering(assignments, profile(table, labels, scaled), selection)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster 0 is the largest, so names are stable and read in order of importance."""
    order = pd.Series(labels).value_counts().index
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping[label] for label in labels])


def profile(table: pd.DataFrame, labels: np.ndarray, scaled: np.ndarray) -> pd.DataFrame:
    grouped = table.assign(**{CLUSTER: labels}).groupby(CLUSTER)
    profiles = pd.DataFrame(
        {
            "customers": grouped.size(),
            "share_of_customers": (grouped.size() / len(table)).round(3),
            "median_recency_days": grouped[RECENCY_DAYS].median(),
            "mean_orders": grouped[FREQUENCY].mean().round(2),
            "mean_spend": grouped[MONETARY].mean().round(2),
            "mean_basket_units": grouped[BASKET_UNITS].mean().round(2),
            "discount_share": grouped[DISCOUNT_SHARE].mean().round(3),
        }
    )
    share_columns = [name for name in table.columns if name.startswith(SHARE_PREFIX)]
    shares = grouped[share_columns].mean()
    profiles["top_category"] = shares.idxmax(axis=1).str.removeprefix(SHARE_PREFIX)
    profiles["top_category_share"] = shares.max(axis=1).round(3)
    z = pd.DataFrame(scaled, columns=table.columns).assign(**{CLUSTER: labels}).groupby(CLUSTER).mean()
    profiles["label"] = [_label(z.loc[k], profiles.loc[k, "top_category"]) for k in profiles.index]
    return profiles.reset_index()


def _label(z: pd.Series, top_category: str) -> str:
    """Words for what sets a cluster apart (standardized means beyond ±0.5)."""
    words = []
    if z[RECENCY_DAYS] < -0.5:
        words.append("recent")
    elif z[RECENCY_DAYS] > 0.5:
        words.append("lapsed")
    if z[FREQUENCY] > 0.5:
        words.append("frequent")
    if z[MONETARY] > 0.5:
        words.append("high spend")
    elif z[MONETARY] < -0.5:
        words.append("low spend")
    if z[BASKET_UNITS] > 0.5:
        words.append("big baskets")
    if z[DISCOUNT_SHARE] > 0.5:
        words.append("buys on promotion")
    elif z[DISCOUNT_SHARE] < -0.5:
        words.append("pays full price")
    share_column = f"{SHARE_PREFIX}{top_category}"
    if share_column in z and z[share_column] > 0.5:
        words.append(f"mostly {top_category}")
    return ", ".join(words) if words else "typical customers"
