"""The demo shop's catalogue: an accessories and jewellery shop priced in RM.

Each item has observable attributes (category, style, material, collection, price band,
list price, unit cost) and hidden truths the generator uses and the models must find:
how popular it is, how its popularity drifts, how often a view converts, and how demand
responds to its price (its true elasticity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from storewise import columns as c


@dataclass(frozen=True)
class CategorySpec:
    name: str
    prefix: str
    share: float
    price_low: float
    price_high: float
    conversion: float
    elasticity: float
    extra_units: float
    return_rate: float
    in_collections: bool


CATEGORIES = (
    CategorySpec("necklace", "NK", 0.17, 89, 459, 0.112, -1.8, 0.05, 0.05, True),
    CategorySpec("pendant", "PD", 0.11, 59, 299, 0.120, -1.9, 0.05, 0.05, True),
    CategorySpec("chain", "CH", 0.10, 39, 189, 0.128, -2.2, 0.08, 0.04, False),
    CategorySpec("earrings", "ER", 0.19, 29, 259, 0.128, -2.0, 0.10, 0.04, True),
    CategorySpec("bracelet", "BR", 0.15, 39, 329, 0.120, -2.0, 0.06, 0.05, True),
    CategorySpec("ring", "RG", 0.14, 49, 399, 0.105, -1.6, 0.03, 0.12, True),
    CategorySpec("gift box", "GB", 0.07, 9.9, 39.9, 0.165, -2.5, 0.40, 0.02, False),
    CategorySpec("care kit", "CK", 0.07, 19, 69, 0.150, -1.4, 0.30, 0.01, False),
)
CATEGORY_NAMES = tuple(spec.name for spec in CATEGORIES)
STYLES = ("minimalist", "classic", "vintage", "boho", "statement")
MATERIALS = ("sterling silver", "gold-plated", "rose gold", "pearl", "crystal")
PRICE_BANDS = ("budget", "mid", "premium")
COLLECTION_WORDS = (
    "Aurora",
    "Bloom",
    "Celeste",
    "Dahlia",
    "Ember",
    "Fern",
    "Grace",
    "Halo",
    "Iris",
    "Jade",
    "Kira",
    "Luna",
    "Mira",
    "Nova",
    "Orchid",
    "Pearl",
    "Quill",
    "Rosa",
    "Sora",
    "Tiara",
    "Umi",
    "Vela",
    "Willow",
    "Xena",
    "Yara",
    "Zinnia",
    "Amara",
    "Bella",
    "Cleo",
    "Dara",
)


@dataclass(frozen=True)
class Catalog:
    """Observable products plus the hidden per-item truths (same row order)."""

    products: pd.DataFrame
    style: np.ndarray
    material: np.ndarray
    category: np.ndarray
    band: np.ndarray
    collection: np.ndarray  # -1 for items outside any collection
    view_share: np.ndarray
    trend_per_year: np.ndarray
    launch_day: np.ndarray
    conversion: np.ndarray
    elasticity: np.ndarray
    extra_units: np.ndarray
    return_rate: np.ndarray
    ref_price: np.ndarray
    unit_cost: np.ndarray

    @property
    def size(self) -> int:
        return len(self.products)


def shop_price(amounts: np.ndarray) -> np.ndarray:
    """Round to the shop's price endings: whole ringgit minus ten sen (RM 89.90)."""
    return np.maximum(np.round(np.asarray(amounts, float)) - 0.10, 0.90).round(2)


def make_catalog(n_products: int, days: int, rng: np.random.Generator) -> Catalog:
    specs = CATEGORIES
    shares = np.array([spec.share for spec in specs])
    category = rng.choice(len(specs), size=n_products, p=shares / shares.sum())
    style = rng.integers(0, len(STYLES), n_products)
    material = rng.integers(0, len(MATERIALS), n_products)

    # Collections: sets of jewellery in one style and material (a necklace with matching
    # earrings, bracelet, ring) that customers buy together.
    in_collection = np.array([specs[k].in_collections for k in category])
    collection = np.full(n_products, -1)
    members = np.flatnonzero(in_collection)
    n_collections = max(1, len(members) // 4)
    collection[members] = rng.integers(0, n_collections, len(members))
    collection_style = rng.integers(0, len(STYLES), n_collections)
    collection_material = rng.integers(0, len(MATERIALS), n_collections)
    style[members] = collection_style[collection[members]]
    material[members] = collection_material[collection[members]]

    low = np.array([specs[k].price_low for k in category])
    high = np.array([specs[k].price_high for k in category])
    position = rng.beta(1.6, 2.4, n_products)
    premium_material = np.isin(material, [MATERIALS.index("gold-plated"), MATERIALS.index("pearl")])
    position = np.clip(position + 0.12 * premium_material, 0, 1)
    list_price = shop_price(low * (high / low) ** position)
    band = np.digitize(position, [1 / 3, 2 / 3])
    unit_cost = np.round(list_price * rng.uniform(0.28, 0.5, n_products), 2)

    view_share = rng.lognormal(0.0, 1.0, n_products)
    view_share /= view_share.sum()
    trend = rng.normal(0.0, 0.25, n_products)
    launched_later = rng.random(n_products) < 0.15
    launch_day = np.where(
        launched_later, rng.integers(int(days * 0.2), max(int(days * 0.9), 1), n_products), 0
    )

    conversion = np.array([specs[k].conversion for k in category]) * rng.lognormal(0, 0.2, n_products)
    elasticity = np.clip(
        np.array([specs[k].elasticity for k in category]) + rng.normal(0, 0.35, n_products),
        -3.5,
        -0.6,
    )
    extra_units = np.array([specs[k].extra_units for k in category])
    return_rate = np.array([specs[k].return_rate for k in category])

    products = _describe(category, style, material, collection, band, list_price, unit_cost)
    return Catalog(
        products=products,
        style=style,
        material=material,
        category=category,
        band=band,
        collection=collection,
        view_share=view_share,
        trend_per_year=trend,
        launch_day=launch_day,
        conversion=conversion,
        elasticity=elasticity,
        extra_units=extra_units,
        return_rate=return_rate,
        ref_price=list_price.copy(),
        unit_cost=unit_cost,
    )


def _describe(
    category: np.ndarray,
    style: np.ndarray,
    material: np.ndarray,
    collection: np.ndarray,
    band: np.ndarray,
    list_price: np.ndarray,
    unit_cost: np.ndarray,
) -> pd.DataFrame:
    n = len(category)
    counters: dict[str, int] = {}
    ids, names, tags = [], [], []
    for i in range(n):
        spec = CATEGORIES[category[i]]
        counters[spec.prefix] = counters.get(spec.prefix, 0) + 1
        ids.append(f"{spec.prefix}{counters[spec.prefix]:04d}")
        style_name, material_name = STYLES[style[i]], MATERIALS[material[i]]
        item_tags = [style_name, material_name, PRICE_BANDS[band[i]]]
        if collection[i] >= 0:
            word = COLLECTION_WORDS[collection[i] % len(COLLECTION_WORDS)]
            suffix = collection[i] // len(COLLECTION_WORDS)
            collection_name = word if suffix == 0 else f"{word} {suffix + 1}"
            names.append(f"{collection_name} {style_name} {material_name} {spec.name}")
            item_tags.append(f"collection:{collection_name.lower().replace(' ', '-')}")
        elif spec.name in ("gift box", "care kit"):
            names.append(f"{style_name.title()} {spec.name} ({material_name})")
        else:
            names.append(f"{style_name.title()} {material_name} {spec.name}")
        tags.append(c.TAG_SEPARATOR.join(item_tags))
    return pd.DataFrame(
        {
            c.ITEM_ID: ids,
            c.NAME: names,
            c.CATEGORY: [CATEGORIES[k].name for k in category],
            c.TAGS: tags,
            c.LIST_PRICE: list_price,
            c.UNIT_COST: unit_cost,
        }
    )
