"""What the recommender's bundle holds, assembled from the shop's tables at training: the
catalogue, the personalizable customers (pseudonymous ids, region, segment, consent only)
and popularity by region and segment for cold start. The format is
`inference/recommender/bundle.py`'s."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from inference.recommender.answers import GROUP, GROUP_KIND, SCORE
from inference.recommender.bundle import write_bundle
from inference.recommender.scoring import HybridModel
from storewise import columns as c
from training.recommender.background import Shared
from training.recommender.trainer import Trainer


def write_model_bundle(directory: Path, trainer: Trainer, model: HybridModel, groups: pd.DataFrame) -> Path:
    """The bundle of `model`; `groups` is `group_popularity` of the trainer's shop, which the
    run computes as a job of its own while the model trains (in the bundle, at the end of
    the run with the other process idle, it was half a second of the wide stand-in's)."""
    products = trainer.tables[c.PRODUCTS]
    catalog = products[[c.ITEM_ID, c.NAME, c.CATEGORY, c.STOCK, c.LIST_PRICE]]
    consent = trainer.tables[c.CUSTOMERS].set_index(c.CUSTOMER_ID)[
        [c.CONSENT_PERSONALIZATION, c.CONSENT_MARKETING]
    ]
    customers = trainer.customer_features[[c.CUSTOMER_ID, c.REGION, "rfm_segment", c.IS_MEMBER]].join(
        consent, on=c.CUSTOMER_ID
    )
    return write_bundle(directory, model, catalog, customers, groups, trainer.rules)


def shared_group_popularity(orders: Shared[pd.DataFrame], customer_features: pd.DataFrame) -> pd.DataFrame:
    """`group_popularity` as a training run's job (`train.submit_group_popularity`)."""
    return group_popularity(orders.value, customer_features)


def group_popularity(
    orders: pd.DataFrame, customer_features: pd.DataFrame, *, top: int = 100
) -> pd.DataFrame:
    """Distinct buyers per item within each region and each RFM segment (top items only)."""
    sales = orders[~orders[c.RETURNED] & orders[c.CUSTOMER_ID].notna()]
    frames = []
    for kind, column in (("segment", "rfm_segment"), ("region", c.REGION)):
        group_of = customer_features.set_index(c.CUSTOMER_ID)[column]
        pairs = (
            pd.DataFrame(
                {
                    GROUP: sales[c.CUSTOMER_ID].map(group_of).to_numpy(),
                    c.ITEM_ID: sales[c.ITEM_ID].to_numpy(),
                    c.CUSTOMER_ID: sales[c.CUSTOMER_ID].to_numpy(),
                }
            )
            .dropna()
            .drop_duplicates()
        )
        counts = pairs.groupby([GROUP, c.ITEM_ID]).size().rename(SCORE).reset_index()
        counts = counts.sort_values([GROUP, SCORE], ascending=[True, False]).groupby(GROUP).head(top)
        frames.append(counts.assign(**{GROUP_KIND: kind}))
    return pd.concat(frames, ignore_index=True)[[GROUP_KIND, GROUP, c.ITEM_ID, SCORE]]
