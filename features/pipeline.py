"""`storewise features build`: every feature output of a shop, and a manifest.

Reads the canonical tables under `<shop>/raw/`, refuses a shop that fails `data check`,
and writes Parquet files under `<shop>/features/` in one step, with `manifest.json`: the
input hash (of the raw tables, the shop settings and the settings read), row counts,
timings and the config. When the input hash matches the last build, nothing is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from features.clusters import behaviour, cluster_customers
from features.customer_features import customer_features
from features.demand import daily_demand, local_days
from features.interactions import build_interactions, id_maps, with_dismissals
from features.item_features import item_features
from features.journey import funnel, journeys
from features.rfm import rfm_table
from intake.check import check_tables
from intake.tables import read_tables, staged_shop
from storewise import columns as c
from storewise.config import CONFIG_DIR, flatten
from storewise.errors import DataError
from storewise.settings import load_feature_settings, load_recommender_settings
from storewise.shop import ShopPaths

MANIFEST = "manifest.json"
DISCOUNT_TOLERANCE = 0.97  # a price at least 3% under list counts as a discount


class Outputs:
    """File names under `<shop>/features/`."""

    INTERACTIONS = "interactions.parquet"
    USERS = "users.parquet"
    ITEMS = "items.parquet"
    CUSTOMER_FEATURES = "customer_features.parquet"
    ITEM_FEATURES = "item_features.parquet"
    RFM = "rfm.parquet"
    JOURNEY = "journey_funnel.parquet"
    CLUSTERS = "clusters.parquet"
    CLUSTER_PROFILES = "cluster_profiles.parquet"
    CLUSTER_SELECTION = "cluster_selection.parquet"
    DEMAND = "demand.parquet"


@dataclass
class BuildResult:
    manifest: dict[str, object]
    rebuilt: bool
    notes: list[str] = field(default_factory=list)


def input_hash(shop: ShopPaths, config_dir: Path) -> str:
    """Hash of the raw tables, the shop settings and the settings features read (all of
    features.yaml, only the `interactions` part of recommender.yaml: model settings do not
    change the features)."""
    digest = hashlib.sha256()
    used = {
        "features": load_feature_settings(config_dir).model_dump(mode="json"),
        "interactions": load_recommender_settings(config_dir).interactions.model_dump(mode="json"),
    }
    digest.update(json.dumps(used, sort_keys=True).encode())
    for path in [*sorted(shop.raw.glob("*.parquet")), shop.settings_file]:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_manifest(shop: ShopPaths) -> dict[str, object] | None:
    path = shop.features / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def build_features(shop: ShopPaths, *, config_dir: Path = CONFIG_DIR, force: bool = False) -> BuildResult:
    started = time.perf_counter()
    feature_settings = load_feature_settings(config_dir)
    recommender_settings = load_recommender_settings(config_dir)
    settings = shop.settings()
    digest = input_hash(shop, config_dir)
    previous = read_manifest(shop)
    if not force and previous is not None and previous.get("input_hash") == digest:
        return BuildResult(previous, rebuilt=False)

    tables = read_tables(shop)
    report = check_tables(tables, settings.tz)
    if not report.ok:
        first = report.errors[0]
        raise DataError(
            f"fails `storewise data check` ({len(report.errors)} problem(s), first: {first}); fix or re-import the data",
            path=shop.raw,
        )
    orders, products, customers = tables[c.ORDERS], tables[c.PRODUCTS], tables[c.CUSTOMERS]
    events = tables.get(c.EVENTS)
    price_history = tables.get(c.PRICE_HISTORY)
    stock_history = tables.get(c.STOCK_HISTORY)
    tz = settings.tz
    timings: dict[str, float] = {}
    outputs: dict[str, pd.DataFrame] = {}
    notes: list[str] = []

    steps = ["interactions", "rfm", "items and customers", "journey", "clusters", "demand"]
    with tqdm(total=len(steps), desc="building features", unit="step") as bar:

        def step(name: str) -> None:
            """Record the step just finished and move the bar past it."""
            timings[name] = round(time.perf_counter() - step_started[0], 3)
            step_started[0] = time.perf_counter()
            bar.set_postfix_str(f"done: {name}")
            bar.update(1)

        step_started = [time.perf_counter()]
        # "not interested" from the service's dismissals log counts against an item
        with_dismissed = with_dismissals(tables, shop).get(c.EVENTS)
        interactions = build_interactions(
            orders, with_dismissed, customers, recommender_settings.interactions
        )
        users, items = id_maps(interactions, products)
        outputs |= {Outputs.INTERACTIONS: interactions, Outputs.USERS: users, Outputs.ITEMS: items}
        step("interactions")

        rfm = rfm_table(orders, quantiles=feature_settings.rfm.quantiles)
        outputs[Outputs.RFM] = rfm
        step("rfm")
        item_table = item_features(products)
        outputs[Outputs.ITEM_FEATURES] = item_table
        outputs[Outputs.CUSTOMER_FEATURES] = customer_features(customers, rfm, interactions, item_table)
        step("items and customers")

        if events is not None and (events[c.EVENT] == c.VIEW).any():
            rows = journeys(
                events, feature_settings.journey.period, feature_settings.journey.max_hours_between_stages
            )
            outputs[Outputs.JOURNEY] = funnel(rows, rfm)
        else:
            outputs[Outputs.JOURNEY] = funnel(pd.DataFrame(), rfm)
            notes.append(
                "no storefront events: the journey funnel is empty (orders alone show no views or carts)"
            )
        step("journey")

        discounted = discounted_lines(orders, products, price_history, tz)
        table = behaviour(orders, products, rfm, discounted, feature_settings.clusters.top_categories)
        clustering = cluster_customers(table, feature_settings.clusters)
        outputs[Outputs.CLUSTERS] = clustering.assignments
        outputs[Outputs.CLUSTER_PROFILES] = clustering.profiles
        outputs[Outputs.CLUSTER_SELECTION] = clustering.selection
        step("clusters")

        outputs[Outputs.DEMAND] = daily_demand(
            orders,
            products,
            tz,
            events=events,
            price_history=price_history,
            stock_history=stock_history,
            velocity_windows=feature_settings.demand.velocity_windows,
        )
        if stock_history is None:
            notes.append("no stock history: stock-out days cannot be flagged (stock_start is empty)")
        step("demand")

    with staged_shop(shop) as staging:
        directory = staging / shop.features.name
        directory.mkdir()
        for name, frame in outputs.items():
            frame.to_parquet(directory / name, index=False)
        manifest = {
            "input_hash": digest,
            "built_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 3),
            "step_seconds": timings,
            "row_counts": {name: len(frame) for name, frame in outputs.items()},
            "shop": settings.model_dump(),
            "config": {
                **flatten(feature_settings, "features."),
                **flatten(recommender_settings.interactions, "recommender.interactions."),
            },
            "notes": notes,
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return BuildResult(manifest, rebuilt=True, notes=notes)


def discounted_lines(
    orders: pd.DataFrame, products: pd.DataFrame, price_history: pd.DataFrame | None, tz: object
) -> pd.Series:
    """Per order line: bought on promotion (by the price history) or at least 3% under
    the list price."""
    list_price = orders[c.ITEM_ID].map(products.set_index(c.ITEM_ID)[c.LIST_PRICE]).to_numpy()
    below_list = orders[c.UNIT_PRICE].to_numpy() < list_price * DISCOUNT_TOLERANCE
    if price_history is None or price_history.empty:
        return pd.Series(below_list, index=orders.index)
    lines = pd.DataFrame(
        {
            c.ITEM_ID: orders[c.ITEM_ID].to_numpy(),
            c.DATE: local_days(orders[c.ORDERED_AT], tz).to_numpy(),
            "row": np.arange(len(orders)),
        }
    )
    history = price_history[[c.ITEM_ID, c.DATE, c.PROMO]].assign(
        **{c.DATE: pd.to_datetime(price_history[c.DATE]).astype("datetime64[us]")}
    )
    lines[c.DATE] = lines[c.DATE].astype("datetime64[us]")
    matched = pd.merge_asof(lines.sort_values(c.DATE), history.sort_values(c.DATE), on=c.DATE, by=c.ITEM_ID)
    promo = np.zeros(len(orders), bool)
    promo[matched["row"].to_numpy()] = matched[c.PROMO].fillna(False).astype(bool).to_numpy()
    return pd.Series(promo | below_list, index=orders.index)


def fresh_manifest(shop: ShopPaths, config_dir: Path = CONFIG_DIR) -> dict[str, object]:
    """The features' manifest, provided they exist and were built from the current inputs;
    training refuses stale features rather than learn from data that is no longer there."""
    manifest = read_manifest(shop)
    if manifest is None:
        raise DataError("no features yet; run `storewise features build` first", path=shop.features)
    if manifest["input_hash"] != input_hash(shop, config_dir):
        raise DataError(
            "features are out of date (the data or config changed); run `storewise features build`",
            path=shop.features,
        )
    return manifest


def load_output(shop: ShopPaths, name: str) -> pd.DataFrame:
    path = shop.features / name
    if not path.exists():
        raise DataError("feature output missing; run `storewise features build` first", path=path)
    return pd.read_parquet(path)
