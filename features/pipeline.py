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
from features.manifest import MANIFEST, read_manifest
from features.rfm import rfm_table
from intake.check import check_tables
from intake.tables import read_tables, staged_shop
from storewise import columns as c
from storewise.config import CONFIG_DIR, flatten
from storewise.errors import DataError
from storewise.settings import load_feature_settings, load_recommender_settings
from storewise.shop import ShopPaths

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


def build_features(shop: ShopPaths, *, config_dir: Path = CONFIG_DIR, force: bool = False) -> BuildResult:
    started = time.perf_counter()
    if not shop.settings_file.exists():
        raise DataError(
            "no shop here (no shop.yaml); run `storewise data import` or `storewise data generate` first",
            path=shop.root,
        )
    digest = input_hash(shop, config_dir)
    previous = read_manifest(shop)
    if not force and previous is not None and previous.get("input_hash") == digest:
        return BuildResult(previous, rebuilt=False)
    tables = checked_tables(shop)
    build = FeatureBuild(tables, shop, config_dir)
    customer_steps = has_customers(tables[c.ORDERS])
    steps = [*(CUSTOMER_STEPS if customer_steps else ()), "demand"]
    with tqdm(total=len(steps), desc="building features", unit="step") as bar:
        if customer_steps:
            build.customer_outputs(bar)
        else:
            build.notes.append(
                "no customer on any order (a sales export): the customer features (interactions, RFM, "
                "items and customers, journey, clusters) are not built and the recommender cannot train here"
            )
        build.demand_output(bar)
    manifest = write_outputs(shop, build, digest, started)
    return BuildResult(manifest, rebuilt=True, notes=build.notes)


CUSTOMER_STEPS = ("interactions", "rfm", "items and customers", "journey", "clusters")


def has_customers(orders: pd.DataFrame) -> bool:
    return bool(orders[c.CUSTOMER_ID].notna().any())


def checked_tables(shop: ShopPaths) -> dict[str, pd.DataFrame]:
    """The shop's tables, provided they pass `data check`."""
    tables = read_tables(shop)
    report = check_tables(tables, shop.settings().tz)
    if not report.ok:
        first = report.errors[0]
        raise DataError(
            f"fails `storewise data check` ({len(report.errors)} problem(s), first: {first}); fix or re-import the data",
            path=shop.raw,
        )
    return tables


class FeatureBuild:
    """The outputs of one build, step by step, with each step's time and the notes."""

    def __init__(self, tables: dict[str, pd.DataFrame], shop: ShopPaths, config_dir: Path) -> None:
        self.tables, self.shop = tables, shop
        settings = shop.settings()
        self.shop_settings = settings
        self.features = load_feature_settings(config_dir)
        self.recommender = load_recommender_settings(config_dir)
        self.outputs: dict[str, pd.DataFrame] = {}
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self._mark = time.perf_counter()

    def step(self, name: str, bar: tqdm) -> None:
        """Record the step just finished and move the bar past it."""
        self.timings[name] = round(time.perf_counter() - self._mark, 3)
        self._mark = time.perf_counter()
        bar.set_postfix_str(f"done: {name}")
        bar.update(1)

    def customer_outputs(self, bar: tqdm) -> None:
        t, settings = self.tables, self.features
        orders, products, customers, events = t[c.ORDERS], t[c.PRODUCTS], t[c.CUSTOMERS], t.get(c.EVENTS)
        # "not interested" from the service's dismissals log counts against an item
        with_dismissed = with_dismissals(t, self.shop).get(c.EVENTS)
        interactions = build_interactions(orders, with_dismissed, customers, self.recommender.interactions)
        users, items = id_maps(interactions, products)
        self.outputs |= {Outputs.INTERACTIONS: interactions, Outputs.USERS: users, Outputs.ITEMS: items}
        self.step("interactions", bar)
        rfm = rfm_table(orders, quantiles=settings.rfm.quantiles)
        self.outputs[Outputs.RFM] = rfm
        self.step("rfm", bar)
        item_table = item_features(products)
        self.outputs[Outputs.ITEM_FEATURES] = item_table
        self.outputs[Outputs.CUSTOMER_FEATURES] = customer_features(customers, rfm, interactions, item_table)
        self.step("items and customers", bar)
        self.outputs[Outputs.JOURNEY] = self._journey(events, rfm)
        self.step("journey", bar)
        discounted = discounted_lines(orders, products, t.get(c.PRICE_HISTORY), self.shop_settings.tz)
        table = behaviour(orders, products, rfm, discounted, settings.clusters.top_categories)
        clustering = cluster_customers(table, settings.clusters)
        self.outputs[Outputs.CLUSTERS] = clustering.assignments
        self.outputs[Outputs.CLUSTER_PROFILES] = clustering.profiles
        self.outputs[Outputs.CLUSTER_SELECTION] = clustering.selection
        self.step("clusters", bar)

    def _journey(self, events: pd.DataFrame | None, rfm: pd.DataFrame) -> pd.DataFrame:
        if events is not None and (events[c.EVENT] == c.VIEW).any():
            journey = self.features.journey
            return funnel(journeys(events, journey.period, journey.max_hours_between_stages), rfm)
        self.notes.append(
            "no storefront events: the journey funnel is empty (orders alone show no views or carts)"
        )
        return funnel(pd.DataFrame(), rfm)

    def demand_output(self, bar: tqdm) -> None:
        t, shop = self.tables, self.shop_settings
        self.outputs[Outputs.DEMAND] = daily_demand(
            t[c.ORDERS],
            t[c.PRODUCTS],
            shop.tz,
            events=t.get(c.EVENTS),
            price_history=t.get(c.PRICE_HISTORY),
            stock_history=t.get(c.STOCK_HISTORY),
            velocity_windows=self.features.demand.velocity_windows,
            period=shop.period,
            price_log=shop.price_log,
        )
        if t.get(c.STOCK_HISTORY) is None:
            self.notes.append("no stock history: stock-out days cannot be flagged (stock_start is empty)")
        self.step("demand", bar)


def write_outputs(shop: ShopPaths, build: FeatureBuild, digest: str, started: float) -> dict[str, object]:
    """Write every output and the manifest in one step."""
    with staged_shop(shop) as staging:
        directory = staging / shop.features.name
        directory.mkdir()
        for name, frame in build.outputs.items():
            frame.to_parquet(directory / name, index=False)
        manifest = {
            "input_hash": digest,
            "built_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 3),
            "step_seconds": build.timings,
            "row_counts": {name: len(frame) for name, frame in build.outputs.items()},
            "shop": build.shop_settings.model_dump(),
            "period": build.shop_settings.period,
            "config": {
                **flatten(build.features, "features."),
                **flatten(build.recommender.interactions, "recommender.interactions."),
            },
            "notes": build.notes,
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return manifest


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
