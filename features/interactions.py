"""User-item interactions for the recommender: one weight per (customer, item).

Views and add-to-carts come from events, purchases and returns from orders (purchase
events mirror order lines and would count a sale twice). Each contribution is weighted by
its type and halves in value every `half_life_days` before the reference time; returns
count against the item. Guests and customers who did not consent to personalization are
left out here: their behaviour still counts in popularity and demand, never in a model of
them. A customer's "not interested" (the service's `dismiss` feedback, kept in the shop's
`dismissals` log) counts against the item like a return (`with_dismissals` adds them to
the events as `dismiss`), so the next training learns it as a negative signal.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from storewise import columns as c
from storewise.service_logs import DISMISSALS, log_files
from storewise.settings import InteractionWeights
from storewise.shop import ShopPaths

WEIGHT = "weight"
VIEWS = "views"
ADD_TO_CARTS = "add_to_carts"
PURCHASES = "purchases"
RETURNS = "returns"
DISMISS = "dismiss"  # an event kind of the service's feedback, not of a shop's export
LAST_AT = "last_at"
KINDS = (VIEWS, ADD_TO_CARTS, PURCHASES, RETURNS, DISMISS)  # of a contribution (`contributions`)
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
    return interactions_from(
        contributions(orders, events, customers), weights, until=until, reference_time=reference_time
    )


def contributions(orders: pd.DataFrame, events: pd.DataFrame | None, customers: pd.DataFrame) -> pd.DataFrame:
    """Every order line and event that counts towards an interaction, one row each (customer,
    item, time, kind), consenting customers only: the part of `build_interactions` that does
    not depend on a cutoff, so a training run building many cutoffs does it once."""
    parts = [
        _contributions(orders[~orders[c.RETURNED]], c.ORDERED_AT, PURCHASES),
        _contributions(orders[orders[c.RETURNED]], c.ORDERED_AT, RETURNS),
    ]
    if events is not None and len(events):
        parts.append(_contributions(events[events[c.EVENT] == c.VIEW], c.AT, VIEWS))
        parts.append(_contributions(events[events[c.EVENT] == c.ADD_TO_CART], c.AT, ADD_TO_CARTS))
        parts.append(_contributions(events[events[c.EVENT] == DISMISS], c.AT, DISMISS))
    # the empty parts left out (their dtypes differ), all of them only when nothing counts
    long = pd.concat([part for part in parts if len(part)] or parts, ignore_index=True)
    return long[long[c.CUSTOMER_ID].isin(consenting_customers(customers))]


def interactions_from(
    long: pd.DataFrame,
    weights: InteractionWeights,
    *,
    until: pd.Timestamp | None = None,
    reference_time: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """`build_interactions` from its `contributions` (read, never modified: a training run
    reuses them for every cutoff)."""
    if until is not None:
        long = long[long[c.AT] < until]
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
        DISMISS: weights.dismiss,
    }
    # the kinds by code (`contributions` makes the column categorical: a map or comparison
    # on five distinct strings over millions of rows: the large demo shop's six cutoffs took
    # 9.4 s against 10.8 s with them)
    kinds = pd.Categorical(long["kind"], categories=KINDS).codes
    if (kinds < 0).any():
        raise ValueError(f"a contribution's kind is none of {', '.join(KINDS)}")
    weight = np.array([per_kind[kind] for kind in KINDS])[kinds] * decay

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
    for kind in (VIEWS, ADD_TO_CARTS, PURCHASES, RETURNS):
        table[kind] = np.bincount(pair_code[kinds == KINDS.index(kind)], minlength=n_pairs).astype("int32")
    table[WEIGHT] = np.bincount(pair_code, weights=weight, minlength=n_pairs)
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
            "kind": pd.Categorical([kind] * len(known), categories=KINDS),
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


def read_dismissals(shop: ShopPaths) -> pd.DataFrame:
    """Every "not interested" the service kept (`<shop>/logs/dismissals*.jsonl`), as events."""
    rows = []
    for path in log_files(shop.logs, DISMISSALS):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                rows.append((str(record["customer_id"]), str(record["item_id"]), str(record["at"])))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line of a live file: the next build reads it whole
    frame = pd.DataFrame(rows, columns=[c.CUSTOMER_ID, c.ITEM_ID, c.AT])
    frame[c.AT] = pd.to_datetime(frame[c.AT], utc=True, format="ISO8601")
    return frame.assign(**{c.EVENT: DISMISS})


def with_dismissals(tables: dict[str, pd.DataFrame], shop: ShopPaths) -> dict[str, pd.DataFrame]:
    """The shop's tables with its dismissals added to the events (in the events' time zone)."""
    dismissals = read_dismissals(shop)
    if dismissals.empty:
        return tables
    events = tables.get(c.EVENTS)
    if events is not None and len(events) and getattr(events[c.AT].dt, "tz", None) is not None:
        dismissals[c.AT] = dismissals[c.AT].dt.tz_convert(events[c.AT].dt.tz)
    combined = dismissals if events is None else pd.concat([events, dismissals], ignore_index=True)
    return {**tables, c.EVENTS: combined}
