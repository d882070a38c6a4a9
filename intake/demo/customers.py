"""The demo shop's customers: latent taste segments, regions, activity, consent.

A segment is a hidden taste: favourite styles, materials, categories and a price band.
It drives which items a customer looks at; the recommender has to recover it from
behaviour. Regions lean towards some segments, so region is a weak cold-start signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from intake.demo.catalog import CATEGORY_NAMES, MATERIALS, PRICE_BANDS, STYLES, Catalog
from storewise import columns as c


@dataclass(frozen=True)
class Taste:
    name: str
    share: float
    styles: dict[str, float] = field(default_factory=dict)
    materials: dict[str, float] = field(default_factory=dict)
    categories: dict[str, float] = field(default_factory=dict)
    bands: dict[str, float] = field(default_factory=dict)


TASTES = (
    Taste(
        "minimalist silver",
        0.22,
        {"minimalist": 20},
        {"sterling silver": 5},
        {"earrings": 1.5, "ring": 1.4},
        {"budget": 2.0, "mid": 1.3},
    ),
    Taste(
        "classic gold",
        0.20,
        {"classic": 20},
        {"gold-plated": 5},
        {"necklace": 1.5, "bracelet": 1.4},
        {"mid": 1.5, "premium": 1.8},
    ),
    Taste(
        "vintage pearl",
        0.16,
        {"vintage": 20},
        {"pearl": 5, "rose gold": 2},
        {"earrings": 1.4, "pendant": 1.6},
        {"mid": 1.6},
    ),
    Taste(
        "boho",
        0.16,
        {"boho": 20},
        {"crystal": 2, "sterling silver": 2},
        {"bracelet": 1.8, "ring": 1.4},
        {"budget": 2.2},
    ),
    Taste(
        "statement",
        0.12,
        {"statement": 20},
        {"crystal": 5},
        {"necklace": 1.8, "earrings": 1.5},
        {"premium": 2.2},
    ),
    Taste(
        "gift giver",
        0.14,
        {"classic": 2, "minimalist": 2},
        {"rose gold": 2},
        {"gift box": 6, "care kit": 3, "pendant": 1.5},
        {"mid": 1.5},
    ),
)

REGIONS = (
    ("Selangor", 0.26),
    ("Kuala Lumpur", 0.20),
    ("Johor", 0.12),
    ("Penang", 0.10),
    ("Perak", 0.07),
    ("Sabah", 0.06),
    ("Sarawak", 0.06),
    ("Negeri Sembilan", 0.05),
    ("Melaka", 0.04),
    ("Kedah", 0.04),
)


@dataclass(frozen=True)
class Population:
    """Observable customers plus hidden truths (same row order)."""

    customers: pd.DataFrame
    segment: np.ndarray
    activity: np.ndarray
    active_from_day: np.ndarray  # day index from the start of the history; negative = before it


def affinity(catalog: Catalog) -> np.ndarray:
    """How much each taste segment likes each item (segments x items), before popularity."""
    result = np.ones((len(TASTES), catalog.size))
    for s, taste in enumerate(TASTES):
        for name, weight in taste.styles.items():
            result[s, catalog.style == STYLES.index(name)] *= weight
        for name, weight in taste.materials.items():
            result[s, catalog.material == MATERIALS.index(name)] *= weight
        for name, weight in taste.categories.items():
            result[s, catalog.category == CATEGORY_NAMES.index(name)] *= weight
        for name, weight in taste.bands.items():
            result[s, catalog.band == PRICE_BANDS.index(name)] *= weight
    return result


def make_customers(n_customers: int, start: pd.Timestamp, days: int, rng: np.random.Generator) -> Population:
    region_names = [name for name, _ in REGIONS]
    region_p = np.array([share for _, share in REGIONS])
    region = rng.choice(len(REGIONS), n_customers, p=region_p / region_p.sum())

    # Each region leans towards some tastes: a Dirichlet draw around the shop-wide mix.
    base = np.array([taste.share for taste in TASTES])
    lean = rng.dirichlet(base * 12, size=len(REGIONS))
    cumulative = np.cumsum(lean[region], axis=1)
    segment = (rng.random(n_customers)[:, None] > cumulative).sum(axis=1).clip(max=len(TASTES) - 1)

    activity = rng.lognormal(0.0, 1.0, n_customers)
    joined_before = rng.random(n_customers) < 0.55
    active_from = np.where(
        joined_before,
        -rng.integers(1, 3 * 365, n_customers),
        rng.integers(0, max(days - 7, 1), n_customers),
    )
    signup = start + pd.to_timedelta(active_from, unit="D")

    member_p = 1 / (1 + np.exp(-(np.log(activity) - 1.1)))
    is_member = rng.random(n_customers) < member_p
    joined_day = np.maximum(active_from, 0)
    membership_day = joined_day + (rng.random(n_customers) * (days - joined_day)).astype(int)
    member_since = (start + pd.to_timedelta(membership_day, unit="D")).where(is_member)

    consent_personalization = rng.random(n_customers) < 0.88
    consent_marketing = rng.random(n_customers) < np.where(consent_personalization, 0.65, 0.25)

    width = len(str(n_customers)) + 1
    customers = pd.DataFrame(
        {
            c.CUSTOMER_ID: [f"C{i:0{width}d}" for i in range(1, n_customers + 1)],
            c.SIGNUP_DATE: signup.normalize(),
            c.REGION: np.array(region_names)[region],
            c.IS_MEMBER: is_member,
            c.MEMBER_SINCE: pd.to_datetime(member_since).normalize(),
            c.CONSENT_PERSONALIZATION: consent_personalization,
            c.CONSENT_MARKETING: consent_marketing,
        }
    )
    return Population(customers, segment, activity, active_from)
