"""Time-based splits and the matrices every recommender trains on.

A split has a cutoff: everything before it is training data (interactions built with
the shop's weights, decayed to the cutoff), what is bought from the cutoff to the end of
the window is the truth. The validation split ends where the test split begins, so
tuning never sees the test weeks. Users are indexed by the training interactions, items
by the catalogue, so a model never needs to know about ids.

The catalogue at a cutoff can be the catalogue as it was then (`listed_only`): an item the
shop's records first show after the cutoff (its first order line, event or price) had not
been launched, so no model could have offered it then, and it is no one's truth. The test
comparison uses it, so that its figures are what the shop would have got at the test
cutoff: a catalogue rebuilt from an order export, or a demo shop's, lists every item ever
sold. The validation folds keep the whole catalogue: tuning on the catalogue as of each
fold's cutoff was measured and not adopted (benchmarks/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.customer_features import customer_features
from features.interactions import consenting_customers, contributions, interactions_from
from features.rfm import rfm_table
from storewise import columns as c
from storewise.settings import InteractionWeights


@dataclass(frozen=True)
class TrainData:
    """Everything a model may learn from, all before the cutoff."""

    cutoff: pd.Timestamp
    user_ids: np.ndarray
    item_ids: np.ndarray
    weights: sp.csr_matrix  # users x items, interaction weights (decayed)
    purchases: sp.csr_matrix  # users x items, purchase order lines net of returns (`kept_purchases`)
    repeat_score: sp.csr_matrix  # users x items, purchases decayed by recency (for buy again)
    popularity: np.ndarray  # items: distinct buyers, guests and non-consenting included
    trending: np.ndarray  # items: buyers in the last `trending_days`
    item_features: sp.csr_matrix  # items x item feature columns
    user_features: sp.csr_matrix  # users x user feature columns
    item_feature_names: list[str]
    user_feature_names: list[str]
    # the users' baskets (orders) before the cutoff, oldest first per user: which items
    # each held (baskets x items, 1 = bought and kept), whose it was and how many days
    # before the cutoff it was placed. TIFU-KNN, repurchase timing and sequences read them.
    baskets: sp.csr_matrix
    basket_user: np.ndarray
    basket_age: np.ndarray
    # users x items, True where the customer bought the item before the cutoff, kept or
    # returned: not new to them (the discovery protocol and the service's "exclude
    # purchased" leave these out; an item sent back in full is not offered as new either)
    ever_bought: sp.csr_matrix

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


@dataclass(frozen=True)
class Truth:
    """What each evaluated user bought in the window after the cutoff."""

    user_index: np.ndarray  # users with a purchase in the window and training history
    items: list[np.ndarray]  # item indices bought, per user
    cold_start_customers: np.ndarray  # buyers in the window with no usable history
    cold_start_items: list[np.ndarray]
    window: tuple[pd.Timestamp, pd.Timestamp]


def split_cutoffs(
    orders: pd.DataFrame, test_days: int, validation_days: int
) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """(cutoff, window end) of the validation and test splits, at local midnights."""
    end = orders[c.ORDERED_AT].max().normalize() + pd.Timedelta(days=1)
    test_cutoff = end - pd.Timedelta(days=test_days)
    validation_cutoff = test_cutoff - pd.Timedelta(days=validation_days)
    return {"validation": (validation_cutoff, test_cutoff), "test": (test_cutoff, end), "final": (end, end)}


@dataclass(frozen=True)
class PreparedTables:
    """The shop's tables, prepared once for the many cutoffs of a training run, and the
    interactions' contributions (`features.interactions.contributions`: every order line
    and event that counts, consenting customers only), which depend on no cutoff: each
    cutoff's interactions are then a filter and a sum (`interactions_from`)."""

    tables: dict[str, pd.DataFrame]
    contributions: pd.DataFrame
    # per item, the first time the shop's records show it (an order line, an event or a
    # price; naive UTC); items with no record are absent
    first_seen: pd.Series
    # the order lines' ids as integer codes (`OrderCodes`)
    codes: OrderCodes


@dataclass(frozen=True)
class OrderCodes:
    """Each order line's customer, item and buyer (the customer, or for a guest order the
    order itself: one buyer) as a code into the shop's distinct values of each (-1: no
    customer), made once per run. Every cutoff then finds its lines' rows and columns by
    integer lookups: looking the ids themselves up in each cutoff's customers and items
    (`isin`, `.loc`, and the guests' ids joined as strings) again at every cutoff was about
    1.5 of the 5.3 s the wide stand-in's six cutoffs took (the baskets' joined strings,
    `basket_matrix`, another 0.5). The hybrid's recent history and decayed trending find
    their lines the same way (`lines_in`; 2.5 s of the six fits there before, 0.5 s now)."""

    customers: pd.Index  # the distinct customer ids (a code indexes it)
    items: pd.Index
    customer: np.ndarray  # per order line, int64
    item: np.ndarray
    buyer: np.ndarray

    @classmethod
    def of(cls, orders: pd.DataFrame) -> OrderCodes:
        customer, customers = pd.factorize(orders[c.CUSTOMER_ID])
        item, items = pd.factorize(orders[c.ITEM_ID])
        # every code a buyer's, even a missing one's (the intake requires an order id); in
        # the ids' order, so buyers grouped by code come in the order grouping the ids gave
        # (`hybrid.decayed_popularity` sums their weights in it)
        buyer, _ = pd.factorize(
            orders[c.CUSTOMER_ID].fillna("guest:" + orders[c.ORDER_ID]), sort=True, use_na_sentinel=False
        )
        as_int = (np.asarray(codes, np.int64) for codes in (customer, item, buyer))
        return cls(pd.Index(customers), pd.Index(items), *as_int)

    def lines_in(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each order line's row among `user_ids` and column among `item_ids` (-1: not there)."""
        return (
            self.positions(self.customers, user_ids, self.customer),
            self.positions(self.items, item_ids, self.item),
        )

    @staticmethod
    def positions(universe: pd.Index, ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """For each of `codes` (into `universe`), its position in `ids` (-1: not there)."""
        position = np.full(len(universe) + 1, -1, np.int64)  # the last: code -1, no id
        found = universe.get_indexer(ids)
        position[found[found >= 0]] = np.flatnonzero(found >= 0)
        return position[codes]


def prepare_tables(tables: dict[str, pd.DataFrame]) -> PreparedTables:
    """Ids as plain Python strings (pandas' Arrow-backed strings look values up one by one
    in `isin`, seconds per call on the demo shop); the contributions' times as naive UTC,
    which pandas compares and groups many times faster than zone-aware ones (the
    interactions come out the same: only differences of times are used)."""
    prepared = {name: _plain_ids(table) for name, table in tables.items()}
    orders = prepared[c.ORDERS].copy()
    orders[c.ORDERED_AT] = _naive_utc(orders[c.ORDERED_AT])
    events = prepared.get(c.EVENTS)
    if events is not None:
        events = events.copy()
        events[c.AT] = _naive_utc(events[c.AT])
    return PreparedTables(
        prepared,
        contributions(orders, events, prepared[c.CUSTOMERS]),
        # the orders are kept in the shop's time zone: a price's day is read in it
        first_seen(orders, events, prepared.get(c.PRICE_HISTORY), prepared[c.ORDERS][c.ORDERED_AT].dt.tz),
        OrderCodes.of(prepared[c.ORDERS]),
    )


def first_seen(
    orders: pd.DataFrame, events: pd.DataFrame | None, prices: pd.DataFrame | None, zone: object = None
) -> pd.Series:
    """Each item's first order line, event or price, as naive UTC (`orders` and `events`
    already so; a price's date is a day of the shop's time zone `zone`, the orders' zone,
    and counts from its local midnight). Microseconds, not pandas' default nanoseconds: the
    intake accepts dates up to 9999-12-31."""
    times = [orders.groupby(c.ITEM_ID)[c.ORDERED_AT].min()]
    if events is not None and len(events):
        times.append(events.groupby(c.ITEM_ID)[c.AT].min())
    if prices is not None and len(prices):
        days = pd.Series(pd.to_datetime(prices[c.DATE]).to_numpy(), index=prices.index)
        if days.dt.tz is None and zone is not None:
            # a midnight that happens twice (a clock set back at midnight) is the first one
            days = days.astype("datetime64[us]").dt.tz_localize(
                zone, ambiguous=np.ones(len(days), bool), nonexistent="shift_forward"
            )
        days = _naive_utc(days) if days.dt.tz is not None else days
        times.append(days.groupby(prices[c.ITEM_ID].to_numpy()).min())
    stacked = pd.concat([series.astype("datetime64[us]") for series in times])
    return stacked.groupby(level=0).min()


def listed_at(prepared: PreparedTables, cutoff: pd.Timestamp) -> np.ndarray:
    """The catalogue's item ids as of `cutoff`: those the records show before it, and those
    they never show (listed, never sold: nothing says when they came)."""
    items = prepared.tables[c.PRODUCTS][c.ITEM_ID].unique()
    seen = prepared.first_seen.reindex(items)
    return np.asarray(items[seen.isna().to_numpy() | (seen < _naive(cutoff)).to_numpy()])


def _naive(cutoff: pd.Timestamp) -> pd.Timestamp:
    return cutoff.tz_convert("UTC").tz_localize(None) if cutoff.tz is not None else cutoff


def _plain_ids(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for column in (c.CUSTOMER_ID, c.ITEM_ID, c.ORDER_ID):
        if column in table:
            table[column] = table[column].astype(object)
    return table


def _naive_utc(times: pd.Series) -> pd.Series:
    return times.dt.tz_convert("UTC").dt.tz_localize(None) if times.dt.tz is not None else times


def build_train_data(
    tables: dict[str, pd.DataFrame] | PreparedTables,
    item_features: pd.DataFrame,
    weights: InteractionWeights,
    cutoff: pd.Timestamp,
    *,
    trending_days: int,
    repeat_half_life_days: float,
    listed_only: bool = False,
) -> TrainData:
    """The data at `cutoff`; with `listed_only`, over the catalogue as it was then
    (`listed_at`), else over the whole catalogue."""
    prepared = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    orders, customers = prepared.tables[c.ORDERS], prepared.tables[c.CUSTOMERS]
    naive_cutoff = _naive(cutoff)
    interactions = interactions_from(prepared.contributions, weights, until=naive_cutoff)
    user_ids = np.sort(interactions[c.CUSTOMER_ID].unique()).astype(object)
    # every item interacted with before the cutoff is listed by then: the same times, `<`
    catalogue = (
        listed_at(prepared, cutoff) if listed_only else prepared.tables[c.PRODUCTS][c.ITEM_ID].unique()
    )
    item_ids = np.sort(catalogue).astype(object)
    user_of = pd.Series(np.arange(len(user_ids)), index=user_ids)
    item_of = pd.Series(np.arange(len(item_ids)), index=item_ids)
    shape = (len(user_ids), len(item_ids))

    rows = user_of.loc[interactions[c.CUSTOMER_ID]].to_numpy()
    cols = item_of.loc[interactions[c.ITEM_ID]].to_numpy()
    weight_matrix = sp.csr_matrix((interactions["weight"].to_numpy(np.float32), (rows, cols)), shape=shape)

    is_before = (orders[c.ORDERED_AT] < cutoff).to_numpy()
    before = orders[is_before]
    codes = prepared.codes
    line_row, line_column = codes.lines_in(user_ids, item_ids)
    is_known = is_before & (line_row >= 0) & (line_column >= 0)
    known = orders[is_known]
    returned = known[c.RETURNED].to_numpy()
    age = (cutoff - known[c.ORDERED_AT]).dt.total_seconds().to_numpy() / 86_400
    k_rows, k_cols = line_row[is_known], line_column[is_known]
    bought = ~returned
    decay = 0.5 ** (age / repeat_half_life_days)
    purchases, repeat, ever_bought = kept_purchases(
        k_rows, k_cols, shape, returned, known[c.QUANTITY].to_numpy(np.float64), decay
    )
    baskets, basket_user, basket_age = basket_matrix(
        known[c.ORDER_ID].to_numpy()[bought], k_rows[bought], k_cols[bought], age[bought], purchases
    )

    is_sale = is_before & ~orders[c.RETURNED].to_numpy() & (line_column >= 0)
    popularity = _distinct_buyers(line_column[is_sale], codes.buyer[is_sale], len(item_ids))
    recent = is_sale & (orders[c.ORDERED_AT] >= cutoff - pd.Timedelta(days=trending_days)).to_numpy()
    trending = _distinct_buyers(line_column[recent], codes.buyer[recent], len(item_ids))

    # customer features as known at the cutoff: the segment and favourite category of a
    # customer must not include what they buy in the weeks being predicted
    rfm = rfm_table(before) if len(before) else rfm_table(orders.iloc[:0])
    customer_table = customer_features(customers, rfm, interactions, item_features)
    item_matrix, item_names = item_feature_matrix(item_features, item_ids)
    user_matrix, user_names = user_feature_matrix(customer_table, user_ids)
    return TrainData(
        cutoff=cutoff,
        user_ids=user_ids,
        item_ids=item_ids,
        weights=weight_matrix,
        purchases=purchases,
        repeat_score=repeat,
        ever_bought=ever_bought,
        popularity=popularity,
        trending=trending,
        item_features=item_matrix,
        user_features=user_matrix,
        item_feature_names=item_names,
        user_feature_names=user_names,
        baskets=baskets,
        basket_user=basket_user,
        basket_age=basket_age,
    )


def kept_purchases(
    rows: np.ndarray,
    cols: np.ndarray,
    shape: tuple[int, int],
    returned: np.ndarray,
    quantity: np.ndarray,
    decay: np.ndarray,
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Per customer and item, from its order lines (`returned` marks the return lines): the
    purchase lines net of return lines, and the same with each line decayed by its age
    (`decay`, for buy-again), where the item is kept (some of the quantity bought is); and
    whether it was bought at all, kept or sent back (`TrainData.ever_bought`).

    Each value is what it always was, the lines net of returns (a return counts against
    rebuying), except where the return lines cancel the purchase lines while only part of
    the quantity came back: there, the purchase lines times the share kept. Netting lines
    alone, a customer who bought 12 and sent 4 back in a second line had "not bought" the
    item (459 customer-item pairs of the online-retail sample): their histories lost it.
    An item whose whole quantity came back is not kept, however many lines."""
    sign = np.where(returned, -1.0, 1.0)
    codes, pair = np.unique(rows.astype(np.int64) * shape[1] + cols, return_inverse=True)

    def per_pair(values: np.ndarray) -> np.ndarray:
        return np.bincount(pair, weights=values, minlength=len(codes))

    bought_quantity = per_pair(np.where(returned, 0.0, quantity))
    net_quantity = per_pair(sign * quantity)
    share = np.clip(net_quantity / np.maximum(bought_quantity, 1e-12), 0.0, 1.0)
    kept = (net_quantity > 0) & (bought_quantity > 0)

    def matrix(net: np.ndarray, bought_lines: np.ndarray) -> sp.csr_matrix:
        values = np.where(net > 0, net, bought_lines * share)
        keep = kept & (values > 0)
        return sp.csr_matrix((values[keep], np.divmod(codes[keep], shape[1])), shape=shape)

    bought_lines = per_pair((~returned).astype(np.float64))
    purchases = matrix(per_pair(sign), bought_lines)
    repeat = matrix(per_pair(sign * decay), per_pair(np.where(returned, 0.0, decay)))
    ever = bought_lines > 0
    ever_bought = sp.csr_matrix(
        (np.ones(ever.sum(), bool), np.divmod(codes[ever], shape[1])), shape=shape, dtype=bool
    )
    return purchases, repeat, ever_bought


def basket_matrix(
    order_ids: np.ndarray, users: np.ndarray, items: np.ndarray, ages: np.ndarray, purchases: sp.csr_matrix
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Baskets x items (1 where the basket held the item), with each basket's user and age in
    days, sorted by user and then oldest first. An item the customer returned in full (not
    in `purchases`) is left out of every basket."""
    still_kept = np.asarray(purchases[users, items]).ravel() > 0 if len(users) else np.zeros(0, bool)
    order_ids, users, items, ages = (
        order_ids[still_kept],
        users[still_kept],
        items[still_kept],
        ages[still_kept],
    )
    # a basket is an (order, customer) pair, numbered in order of first appearance; on the
    # order's integer code rather than the joined strings (0.08 s a cutoff on the wide stand-in)
    order_codes = pd.factorize(pd.Series(order_ids, dtype="object").astype(str).to_numpy(object))[0]
    codes, unique_pairs = pd.factorize(order_codes.astype(np.int64) * (int(users.max(initial=0)) + 1) + users)
    n_baskets = len(unique_pairs)
    basket_user = np.zeros(n_baskets, np.int64)
    basket_user[codes] = users
    basket_age = np.zeros(n_baskets, np.float64)
    np.maximum.at(basket_age, codes, ages)
    order = np.lexsort((-basket_age, basket_user))
    rank = np.empty(n_baskets, np.int64)
    rank[order] = np.arange(n_baskets)
    matrix = sp.csr_matrix(
        (np.ones(len(codes), np.float32), (rank[codes], items)), shape=(n_baskets, purchases.shape[1])
    )
    matrix.data = np.ones_like(matrix.data)  # an item twice in one basket is one item
    return matrix, basket_user[order], basket_age[order]


def _distinct_buyers(items: np.ndarray, buyers: np.ndarray, n_items: int) -> np.ndarray:
    """Per item (a column), how many distinct buyers (codes) the lines show."""
    stride = int(buyers.max(initial=0)) + 1
    pairs = np.unique(items * stride + buyers)
    return np.bincount(pairs // stride, minlength=n_items).astype(np.float64)


def one_hot(values: pd.DataFrame, prefix_columns: list[str]) -> tuple[sp.csr_matrix, list[str]]:
    """Columns `name=value` for each (column, value) seen."""
    blocks, names = [], []
    for column in prefix_columns:
        codes, uniques = pd.factorize(values[column].astype("str"))
        blocks.append(
            sp.csr_matrix(
                (np.ones(len(codes), np.float32), (np.arange(len(codes)), codes)),
                shape=(len(codes), len(uniques)),
            )
        )
        names += [f"{column}={value}" for value in uniques]
    return sp.hstack(blocks, format="csr"), names


def item_feature_matrix(item_features: pd.DataFrame, item_ids: np.ndarray) -> tuple[sp.csr_matrix, list[str]]:
    """Category, price band and tags per item (rows in `item_ids` order), each row
    normalized to sum 1 so items with many tags are not louder."""
    table = item_features.set_index(c.ITEM_ID).reindex(item_ids)
    table[c.CATEGORY] = table[c.CATEGORY].fillna("unknown")
    table["price_band"] = table["price_band"].fillna("unknown")
    base, names = one_hot(table.reset_index(), [c.CATEGORY, "price_band"])
    tags = table[c.TAGS].fillna("").astype("str").str.split(c.TAG_SEPARATOR)
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for row, item_tags in enumerate(tags):
        for tag in item_tags:
            if tag:
                rows.append(row)
                cols.append(vocabulary.setdefault(tag, len(vocabulary)))
    tag_matrix = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(item_ids), len(vocabulary))
    )
    matrix = sp.hstack([base, tag_matrix], format="csr")
    return _row_normalize(matrix), names + [f"tag={tag}" for tag in vocabulary]


def user_feature_matrix(
    customer_features: pd.DataFrame, user_ids: np.ndarray
) -> tuple[sp.csr_matrix, list[str]]:
    columns = [c.REGION, "rfm_segment", "preferred_price_band", "favourite_category", c.IS_MEMBER]
    table = customer_features.set_index(c.CUSTOMER_ID).reindex(user_ids).reset_index()
    for column in columns:
        table[column] = table[column].fillna("unknown")
    matrix, names = one_hot(table, columns)
    return _row_normalize(matrix), names


def _row_normalize(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    sums[sums == 0] = 1
    return sp.csr_matrix(sp.diags(1 / sums) @ matrix)


def build_truth(
    orders: pd.DataFrame, customers: pd.DataFrame, data: TrainData, window: tuple[pd.Timestamp, pd.Timestamp]
) -> Truth:
    """Purchases in the window by consenting customers: those the model knows are
    evaluated as users, the others are the cold-start group."""
    start, end = window
    bought = orders[(orders[c.ORDERED_AT] >= start) & (orders[c.ORDERED_AT] < end) & ~orders[c.RETURNED]]
    bought = bought[bought[c.CUSTOMER_ID].isin(consenting_customers(customers))]
    item_of = pd.Series(np.arange(data.n_items), index=data.item_ids)
    bought = bought[bought[c.ITEM_ID].isin(item_of.index)]
    pairs = pd.DataFrame(
        {"customer": bought[c.CUSTOMER_ID].to_numpy(), "item": item_of.loc[bought[c.ITEM_ID]].to_numpy()}
    ).drop_duplicates()
    pairs = pairs.sort_values(["customer", "item"], kind="stable")
    customers, starts = np.unique(pairs["customer"].to_numpy().astype(str), return_index=True)
    per_customer = np.split(pairs["item"].to_numpy(np.int64), starts[1:]) if len(customers) else []
    position = pd.Index(data.user_ids.astype(str)).get_indexer(customers)
    known = position >= 0
    return Truth(
        user_index=position[known].astype(np.int64),
        items=[items for items, k in zip(per_customer, known, strict=True) if k],
        cold_start_customers=customers[~known].astype(object),
        cold_start_items=[items for items, k in zip(per_customer, known, strict=True) if not k],
        window=window,
    )
