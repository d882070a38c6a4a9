"""User-item interactions for the recommender: one weight per (customer, item).

Views and add-to-carts come from events, purchases and returns from orders (purchase
events mirror order lines and would count a sale twice). Each contribution is weighted by
its type and halves in value every `half_life_days` before the reference time; returns
count against the item. Guests and customers who did not consent to personalization are
left out here: their behaviour still counts in popularity and demand, never in a model of
them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storewise import columns as c
from storewise.settings import InteractionWeights

WEIGHT = "weight"
VIEWS = "views"
ADD_TO_CARTS = "add_to_carts"
PURCHASES = "purchases"
RETURNS = "returns"
LAST_AT = "last_at"
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
INTERACTION_COLUMNS = [c.CUSTOMER_ID, c.ITEM_ID, VIEWS, ADD_TO_CARTS, PURCHASES, RETURNS, LAST_AT, WEIGHT]


def consenting_customers(customers: pd.DataFrame) -> pd.Index:
    return pd.Index(customers.loc[customers[c.CONSENT_PERSONALIZATION].astype(bool), c.CUSTOMER_ID])


def build_interactions(
    orders: pd.DataFrame,
    events: pd.DataFrame | None,
    customers: pd.DataFrame,
    weights: InteractionWeights,
    *,
    until: pd.Timestamp | None = None,
    reference_time: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Interactions from everything strictly before `until` (all history if None), decayed
    towards `reference_time` (default: `until`, else the latest record)."""
    parts = [
        _contributions(orders[~orders[c.RETURNED]], c.ORDERED_AT, PURCHASES),
        _contributions(orders[orders[c.RETURNED]], c.ORDERED_AT, RETURNS),
    ]
    if events is not None and len(events):
        parts.append(_contributions(events[events[c.EVENT] == c.VIEW], c.AT, VIEWS))
        parts.append(_contributions(events[events[c.EVENT] == c.ADD_TO_CART], c.AT, ADD_TO_CARTS))
    long = pd.concat([part for part in parts if len(part)], ignore_index=True)
    if until is not None:
        long = long[long[c.AT] < until]
    long = long[long[c.CUSTOMER_ID].isin(consenting_customers(customers))]
    if long.empty:
        return _empty()

    reference = (
        reference_time if reference_time is not None else (until if until is not None else long[c.AT].max())
    )
    age_days = (reference - long[c.AT]).dt.total_seconds().to_numpy() / 86_400
    decay = 0.5 ** (np.maximum(age_days, 0) / weights.half_life_days)
    per_kind = {
        VIEWS: weights.view,
        ADD_TO_CARTS: weights.add_to_cart,
        PURCHASES: weights.purchase,
        RETURNS: weights.return_,
    }
    long[WEIGHT] = long["kind"].map(per_kind).to_numpy() * decay

    # one integer key per pair: bincount and a single groupby beat a pivot on strings
    customer_code, customer_values = pd.factorize(long[c.CUSTOMER_ID])
    item_code, item_values = pd.factorize(long[c.ITEM_ID])
    pair = customer_code.astype(np.int64) * len(item_values) + item_code
    pair_code, pairs = pd.factorize(pair)
    n_pairs = len(pairs)
    table = pd.DataFrame(
        {
            c.CUSTOMER_ID: customer_values[pairs // len(item_values)],
            c.ITEM_ID: item_values[pairs % len(item_values)],
        }
    )
    kinds = long["kind"].to_numpy()
    for kind in (VIEWS, ADD_TO_CARTS, PURCHASES, RETURNS):
        table[kind] = np.bincount(pair_code[kinds == kind], minlength=n_pairs).astype("int32")
    table[WEIGHT] = np.bincount(pair_code, weights=long[WEIGHT].to_numpy(), minlength=n_pairs)
    table[LAST_AT] = long[c.AT].groupby(pair_code).max().sort_index().to_numpy()
    table = table[table[WEIGHT] > 1e-12]
    keys = [c.CUSTOMER_ID, c.ITEM_ID]
    return table[INTERACTION_COLUMNS].sort_values(keys, kind="stable").reset_index(drop=True)


def _contributions(frame: pd.DataFrame, time_column: str, kind: str) -> pd.DataFrame:
    known = frame[frame[c.CUSTOMER_ID].notna() & frame[c.ITEM_ID].notna()]
    # zone-aware times stay a Series: .to_numpy() would make them slow Python objects
    return pd.DataFrame(
        {
            c.CUSTOMER_ID: known[c.CUSTOMER_ID].to_numpy(),
            c.ITEM_ID: known[c.ITEM_ID].to_numpy(),
            c.AT: known[time_column].reset_index(drop=True),
            "kind": kind,
        }
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in INTERACTION_COLUMNS})


def id_maps(interactions: pd.DataFrame, products: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dense indices for the model: every customer with an interaction, and every product
    (items nobody touched yet keep a row so their features can still place them)."""
    users = pd.DataFrame({c.CUSTOMER_ID: np.sort(interactions[c.CUSTOMER_ID].unique())})
    users[USER_INDEX] = np.arange(len(users), dtype=np.int64)
    items = pd.DataFrame({c.ITEM_ID: np.sort(products[c.ITEM_ID].unique())})
    items[ITEM_INDEX] = np.arange(len(items), dtype=np.int64)
    return users, items
