"""Daily demand signals per item, the input of the pricing models.

One row per item and local day, from the item's first sign of life (first order, event
or price) to the last day of the data: days without sales are rows with zero units, not
gaps. The price is the price in force that day (from the price history, else the last
price paid), so a day without sales still says at what price nobody bought. Out-of-stock
days are flagged (no stock at the start of the day, or the day sold the last unit) so
that their low sales read as censored demand, not as low demand. Velocities are trailing
means over the days before, never including the day itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storewise import columns as c

UNITS, REVENUE, AVG_PRICE_PAID = "units", "revenue", "avg_price_paid"
STOCK_START, STOCK_OUT = "stock_start", "stock_out"
VIEWS, ADD_TO_CARTS = "views", "add_to_carts"
DAY_OF_WEEK, MONTH, WEEK_OF_YEAR = "day_of_week", "month", "week_of_year"


def velocity_column(window: int) -> str:
    return f"velocity_{window}d"


def local_days(stamps: pd.Series, tz: object) -> pd.Series:
    return stamps.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


def daily_demand(
    orders: pd.DataFrame,
    products: pd.DataFrame,
    tz: object,
    *,
    events: pd.DataFrame | None = None,
    price_history: pd.DataFrame | None = None,
    stock_history: pd.DataFrame | None = None,
    velocity_windows: tuple[int, ...] = (7, 28),
) -> pd.DataFrame:
    sales = orders[~orders[c.RETURNED]]
    sale_day = local_days(sales[c.ORDERED_AT], tz)
    event_day = (
        local_days(events[c.AT], tz)
        if events is not None and len(events)
        else pd.Series(dtype="datetime64[us]")
    )
    start = min(sale_day.min(), event_day.min()) if len(event_day) else sale_day.min()
    end = max(sale_day.max(), event_day.max()) if len(event_day) else sale_day.max()
    dates = pd.date_range(start, end, freq="D")
    n_days = len(dates)
    item_ids = products[c.ITEM_ID].to_numpy()
    item_of = pd.Series(np.arange(len(item_ids)), index=item_ids)
    n_items = len(item_ids)

    def grid_index(items: pd.Series, days: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        return item_of.reindex(items.to_numpy()).to_numpy(), ((days - start).dt.days).to_numpy()

    units = np.zeros((n_items, n_days), np.int64)
    revenue = np.zeros((n_items, n_days))
    rows, cols = grid_index(sales[c.ITEM_ID], sale_day)
    known = ~np.isnan(rows.astype(float))
    rows, cols = rows[known].astype(np.int64), cols[known]
    np.add.at(units, (rows, cols), sales[c.QUANTITY].to_numpy()[known])
    np.add.at(revenue, (rows, cols), (sales[c.QUANTITY] * sales[c.UNIT_PRICE]).to_numpy()[known])
    first_day = np.full(n_items, n_days, np.int64)
    np.minimum.at(first_day, rows, cols)

    views = np.zeros((n_items, n_days), np.int64)
    carts = np.zeros((n_items, n_days), np.int64)
    if events is not None and len(events):
        for event, target in ((c.VIEW, views), (c.ADD_TO_CART, carts)):
            mask = (events[c.EVENT] == event).to_numpy() & events[c.ITEM_ID].notna().to_numpy()
            e_rows, e_cols = grid_index(events.loc[mask, c.ITEM_ID], event_day[mask])
            ok = ~np.isnan(e_rows.astype(float))
            np.add.at(target, (e_rows[ok].astype(np.int64), e_cols[ok]), 1)
            np.minimum.at(first_day, e_rows[ok].astype(np.int64), e_cols[ok])

    with np.errstate(invalid="ignore", divide="ignore"):
        avg_paid = np.where(units > 0, revenue / units, np.nan)
    list_price = products[c.LIST_PRICE].to_numpy(float)
    if price_history is not None and len(price_history):
        price = _change_log_grid(price_history, c.PRICE, item_of, start, n_days, float)
        promo = _change_log_grid(price_history, c.PROMO, item_of, start, n_days, float)
        history_first = _first_change_day(price_history, item_of, start, n_items, n_days)
        first_day = np.minimum(first_day, history_first)
        price = np.where(np.isnan(price), list_price[:, None], price)
        promo = np.nan_to_num(promo, nan=0.0).astype(bool)
    else:
        price = _forward_fill(avg_paid)
        price = np.where(np.isnan(price), list_price[:, None], price)
        promo = np.zeros((n_items, n_days), bool)

    if stock_history is not None and len(stock_history):
        stock = _change_log_grid(stock_history, c.STOCK, item_of, start, n_days, float)
    else:
        stock = np.full((n_items, n_days), np.nan)
    with np.errstate(invalid="ignore"):
        stock_out = (stock == 0) | ((stock > 0) & (units >= stock))

    day_index = np.arange(n_days)
    active = day_index[None, :] >= first_day[:, None]
    cumulative = np.concatenate([np.zeros((n_items, 1)), np.cumsum(units, axis=1)], axis=1)
    velocities = {}
    for window in velocity_windows:
        lower = np.maximum(day_index - window, first_day[:, None])
        days_seen = day_index[None, :] - lower
        total = (
            cumulative[np.arange(n_items)[:, None], day_index[None, :]]
            - cumulative[np.arange(n_items)[:, None], np.clip(lower, 0, n_days)]
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            velocities[velocity_column(window)] = np.where(days_seen > 0, total / days_seen, np.nan)

    flat = active.ravel()
    item_codes = np.repeat(np.arange(n_items), n_days)[flat]
    date_column = np.tile(dates.to_numpy(), n_items)[flat]
    table = pd.DataFrame(
        {
            c.ITEM_ID: pd.Categorical.from_codes(item_codes, categories=pd.Index(item_ids)),
            c.DATE: date_column,
            UNITS: units.ravel()[flat].astype(np.int32),
            REVENUE: revenue.ravel()[flat].round(2),
            AVG_PRICE_PAID: avg_paid.ravel()[flat],
            c.PRICE: price.ravel()[flat],
            c.LIST_PRICE: np.repeat(list_price, n_days)[flat],
            c.PROMO: promo.ravel()[flat],
            STOCK_START: pd.array(stock.ravel()[flat], dtype="Float64").astype("Int32"),
            STOCK_OUT: stock_out.ravel()[flat],
            VIEWS: views.ravel()[flat].astype(np.int32),
            ADD_TO_CARTS: carts.ravel()[flat].astype(np.int32),
            **{name: values.ravel()[flat] for name, values in velocities.items()},
        }
    )
    table[DAY_OF_WEEK] = table[c.DATE].dt.day_of_week.astype("int8")
    table[MONTH] = table[c.DATE].dt.month.astype("int8")
    table[WEEK_OF_YEAR] = table[c.DATE].dt.isocalendar().week.astype("int8").to_numpy()
    return table


def _forward_fill(grid: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(grid)
    index = np.where(valid, np.arange(grid.shape[1])[None, :], 0)
    np.maximum.accumulate(index, axis=1, out=index)
    filled = grid[np.arange(grid.shape[0])[:, None], index]
    seen = np.maximum.accumulate(valid, axis=1)
    return np.where(seen, filled, np.nan)


def _change_log_grid(
    log: pd.DataFrame, column: str, item_of: pd.Series, start: pd.Timestamp, n_days: int, dtype: type
) -> np.ndarray:
    """A change log (value holds until the item's next row) as an items x days grid; a
    change before the first day applies from the first day."""
    grid = np.full((len(item_of), n_days), np.nan)
    rows = item_of.reindex(log[c.ITEM_ID].to_numpy()).to_numpy()
    days = (pd.to_datetime(log[c.DATE]) - start).dt.days.to_numpy()
    ok = ~np.isnan(rows.astype(float)) & (days < n_days)
    frame = pd.DataFrame(
        {
            "row": rows[ok].astype(np.int64),
            "day": np.maximum(days[ok], 0),
            "value": log[column].to_numpy(dtype)[ok],
        }
    )
    frame = frame.sort_values(["row", "day"], kind="stable").drop_duplicates(["row", "day"], keep="last")
    grid[frame["row"].to_numpy(), frame["day"].to_numpy()] = frame["value"].to_numpy()
    return _forward_fill(grid)


def _first_change_day(
    log: pd.DataFrame, item_of: pd.Series, start: pd.Timestamp, n_items: int, n_days: int
) -> np.ndarray:
    first = np.full(n_items, n_days, np.int64)
    rows = item_of.reindex(log[c.ITEM_ID].to_numpy()).to_numpy()
    days = (pd.to_datetime(log[c.DATE]) - start).dt.days.to_numpy()
    ok = ~np.isnan(rows.astype(float))
    np.minimum.at(first, rows[ok].astype(np.int64), np.clip(days[ok], 0, n_days))
    return first
