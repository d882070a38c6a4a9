"""Item features: what lets the recommender place an item, even one nobody has bought.

Category, tags (the shop's own, or the words of the name for exports without tags) and
a price band: the item's list price against others of its category, in thirds (budget,
mid, premium), so a RM 30 earring and a RM 300 necklace can both be "budget" for their kind.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from storewise import columns as c

PRICE_BAND = "price_band"
BANDS = ("budget", "mid", "premium")
ITEM_FEATURE_COLUMNS = [c.ITEM_ID, c.CATEGORY, PRICE_BAND, c.TAGS]


def price_bands(products: pd.DataFrame) -> pd.Series:
    """Terciles of list price within the category (one band when a category has one price)."""
    rank = products.groupby(c.CATEGORY)[c.LIST_PRICE].rank(method="average", pct=True)
    band = np.ceil(rank * 3).clip(1, 3).astype(int) - 1
    return pd.Series(np.array(BANDS)[band], index=products.index)


def name_words(name: str) -> list[str]:
    return [word for word in re.findall(r"[a-z][a-z'\-]+", str(name).lower()) if len(word) > 2]


def item_features(products: pd.DataFrame) -> pd.DataFrame:
    table = products[[c.ITEM_ID, c.CATEGORY, c.TAGS, c.NAME]].copy()
    table[PRICE_BAND] = price_bands(products)
    missing_tags = table[c.TAGS].isna() | (table[c.TAGS].astype("str").str.strip() == "")
    table.loc[missing_tags, c.TAGS] = [
        c.TAG_SEPARATOR.join(name_words(name)) for name in table.loc[missing_tags, c.NAME]
    ]
    # tags that repeat the band are dropped: the band column says it per category
    table[c.TAGS] = [
        c.TAG_SEPARATOR.join(tag for tag in str(tags).split(c.TAG_SEPARATOR) if tag and tag not in BANDS)
        for tags in table[c.TAGS]
    ]
    return table[ITEM_FEATURE_COLUMNS].reset_index(drop=True)
