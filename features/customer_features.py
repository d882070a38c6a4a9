"""Customer features for the hybrid recommender and for segment-based cold start.

What the shop knows of a customer beyond their interactions: region, membership, RFM
segment, and the price band and category they lean to (from what they bought, else
what they looked at). Every customer has a row, so a customer with no history still has
region and membership to go on.
"""

from __future__ import annotations

import pandas as pd

from features.interactions import PURCHASES, VIEWS
from features.item_features import PRICE_BAND
from features.rfm import SEGMENT
from storewise import columns as c

RFM_SEGMENT = "rfm_segment"
PREFERRED_PRICE_BAND = "preferred_price_band"
FAVOURITE_CATEGORY = "favourite_category"
UNKNOWN = "unknown"
CUSTOMER_FEATURE_COLUMNS = [
    c.CUSTOMER_ID,
    c.REGION,
    c.IS_MEMBER,
    RFM_SEGMENT,
    PREFERRED_PRICE_BAND,
    FAVOURITE_CATEGORY,
]


def customer_features(
    customers: pd.DataFrame, rfm: pd.DataFrame, interactions: pd.DataFrame, item_features: pd.DataFrame
) -> pd.DataFrame:
    table = customers[[c.CUSTOMER_ID, c.REGION, c.IS_MEMBER]].copy()
    table[c.REGION] = table[c.REGION].fillna(UNKNOWN)
    segment = rfm.set_index(c.CUSTOMER_ID)[SEGMENT] if len(rfm) else pd.Series(dtype="str")
    table[RFM_SEGMENT] = table[c.CUSTOMER_ID].map(segment).fillna("no purchase yet")
    items = item_features.set_index(c.ITEM_ID)
    pairs = interactions[[c.CUSTOMER_ID, c.ITEM_ID, PURCHASES, VIEWS]].copy()
    # a purchase says more about taste than a view
    pairs["evidence"] = pairs[PURCHASES] * 5 + pairs[VIEWS]
    pairs[PRICE_BAND] = pairs[c.ITEM_ID].map(items[PRICE_BAND])
    pairs[c.CATEGORY] = pairs[c.ITEM_ID].map(items[c.CATEGORY])
    for column, source in ((PREFERRED_PRICE_BAND, PRICE_BAND), (FAVOURITE_CATEGORY, c.CATEGORY)):
        weight = pairs.groupby([c.CUSTOMER_ID, source])["evidence"].sum().reset_index()
        best = weight.sort_values([c.CUSTOMER_ID, "evidence", source], ascending=[True, False, True])
        best = best.drop_duplicates(c.CUSTOMER_ID).set_index(c.CUSTOMER_ID)[source]
        table[column] = table[c.CUSTOMER_ID].map(best).fillna(UNKNOWN)
    return table[CUSTOMER_FEATURE_COLUMNS].reset_index(drop=True)
