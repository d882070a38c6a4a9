"""Demand signals per item and period (a day, or a week for weekly sales exports), the
input of the pricing models.

One row per item and period, from the item's first sign of life (first order, event or
price) to the last period of the data: periods without sales are rows with zero units,
not gaps. The price is the price in force (from the price history, else the last price
paid), so a period without sales still says at what price nobody bought. Out-of-stock
days are flagged (no stock at the start of the day, or the day sold the last unit) so
that their low sales read as censored demand, not as low demand. Velocities are trailing
means over the periods before, never including the period itself.

How the price history reads is the shop's `price_log`: a log of changes (a price holds
until the item's next row), or a log of every period the export recorded (a weekly sales
export). In the second, a period without a row was not recorded: its row says
`recorded = False`, its units are unknown rather than zero, and models leave it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from storewise import columns as c

UNITS, REVENUE, AVG_PRICE_PAID = "units", "revenue", "avg_price_paid"
STOCK_START, STOCK_OUT = "stock_start", "stock_out"
VIEWS, ADD_TO_CARTS = "views", "add_to_carts"
DAY_OF_WEEK, MONTH, WEEK_OF_YEAR = "day_of_week", "month", "week_of_year"
RECORDED = "recorded"  # the period is in the data (False: a gap in a periodic export)
PERIOD_DAYS = {"day": 1, "week": 7}


def velocity_column(window: int) -> str:
    return f"velocity_{window}d"


def local_days(stamps: pd.Series, tz: object) -> pd.Series:
    return stamps.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


@dataclass(frozen=True)
class Grid:
    """Items x periods: where a day of an item falls."""

    item_ids: np.ndarray
    start: pd.Timestamp
    periods: int
    period_days: int

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.periods, freq=f"{self.period_days}D")

    def rows(self, items: pd.Series | np.ndarray) -> np.ndarray:
        """Row of each item id, NaN for ids not in the products."""
        item_of = pd.Series(np.arange(self.n_items), index=self.item_ids)
        return item_of.reindex(np.asarray(items)).to_numpy(float)

    def columns(self, days: pd.Series) -> np.ndarray:
        return ((pd.to_datetime(days) - self.start).dt.days // self.period_days).to_numpy()

    def empty(self, dtype: type = float) -> np.ndarray:
        return np.zeros((self.n_items, self.periods), dtype)


def daily_demand(
    orders: pd.DataFrame,
    products: pd.DataFrame,
    tz: object,
    *,
    events: pd.DataFrame | None = None,
    price_history: pd.DataFrame | None = None,
    stock_history: pd.DataFrame | None = None,
    velocity_windows: tuple[int, ...] = (7, 28),
    period: str = "day",
    price_log: str = "changes",
) -> pd.DataFrame:
    """The demand table at the shop's period (the name says day for history: it was)."""
    sales = orders[~orders[c.RETURNED]]
    sale_day = local_days(sales[c.ORDERED_AT], tz)
    has_events = events is not None and len(events) > 0
    event_day = local_days(events[c.AT], tz) if events is not None and has_events else None
    grid = _grid(products, sale_day, event_day, period)
    grids: dict[str, np.ndarray] = {}
    first = _sales(grids, grid, sales, sale_day)
    if events is not None and event_day is not None:
        first = np.minimum(first, _events(grids, grid, events, event_day))
    list_price = products[c.LIST_PRICE].to_numpy(float)
    if price_history is not None and len(price_history):
        first = np.minimum(first, _prices_from_history(grids, grid, price_history, list_price, price_log))
    else:
        _prices_paid(grids, grid, list_price)
    _stock(grids, grid, stock_history)
    recorded = grids.get(RECORDED, np.ones_like(grids[UNITS], bool))
    velocities = _velocities(grids[UNITS], recorded, first, velocity_windows, grid.period_days)
    return _table(grid, grids, velocities, first, list_price)


def _grid(products: pd.DataFrame, sale_day: pd.Series, event_day: pd.Series | None, period: str) -> Grid:
    days = [sale_day] if event_day is None else [sale_day, event_day]
    start = min(day.min() for day in days)
    end = max(day.max() for day in days)
    period_days = PERIOD_DAYS[period]
    periods = int((end - start).days // period_days) + 1
    return Grid(products[c.ITEM_ID].to_numpy(), start, periods, period_days)


def _known(grid: Grid, items: pd.Series, days: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and columns of the entries for known items inside the grid, and which those are."""
    rows, cols = grid.rows(items), grid.columns(days)
    ok = ~np.isnan(rows) & (cols < grid.periods)
    return rows[ok].astype(np.int64), cols[ok], ok


def _sales(grids: dict[str, np.ndarray], grid: Grid, sales: pd.DataFrame, day: pd.Series) -> np.ndarray:
    """Units and revenue per item and period; returns each item's first period with a sale."""
    rows, cols, ok = _known(grid, sales[c.ITEM_ID], day)
    units, revenue = grid.empty(np.int64), grid.empty()
    np.add.at(units, (rows, cols), sales[c.QUANTITY].to_numpy()[ok])
    np.add.at(revenue, (rows, cols), (sales[c.QUANTITY] * sales[c.UNIT_PRICE]).to_numpy()[ok])
    grids[UNITS], grids[REVENUE] = units, revenue
    with np.errstate(invalid="ignore", divide="ignore"):
        grids[AVG_PRICE_PAID] = np.where(units > 0, revenue / units, np.nan)
    first = np.full(grid.n_items, grid.periods, np.int64)
    np.minimum.at(first, rows, cols)
    return first


def _events(grids: dict[str, np.ndarray], grid: Grid, events: pd.DataFrame, day: pd.Series) -> np.ndarray:
    """Views and add-to-carts per item and period; returns each item's first period seen."""
    first = np.full(grid.n_items, grid.periods, np.int64)
    for event, name in ((c.VIEW, VIEWS), (c.ADD_TO_CART, ADD_TO_CARTS)):
        mask = (events[c.EVENT] == event).to_numpy() & events[c.ITEM_ID].notna().to_numpy()
        rows, cols, _ = _known(grid, events.loc[mask, c.ITEM_ID], day[mask])
        counts = grid.empty(np.int64)
        np.add.at(counts, (rows, cols), 1)
        np.minimum.at(first, rows, cols)
        grids[name] = counts
    return first


def _prices_from_history(
    grids: dict[str, np.ndarray], grid: Grid, history: pd.DataFrame, list_price: np.ndarray, price_log: str
) -> np.ndarray:
    """Price, promotion and feature in force per period; returns each item's first period
    in the price history."""
    price = _log_grid(history, c.PRICE, grid)
    in_force = _forward_fill(price)
    grids[c.PRICE] = np.where(np.isnan(in_force), list_price[:, None], in_force)
    feature = _log_grid(history, c.FEATURE, grid) if c.FEATURE in history else grid.empty() * np.nan
    promo = _log_grid(history, c.PROMO, grid)
    if price_log == "periods":
        # only the recorded periods say anything about promotions and sales
        grids[RECORDED] = ~np.isnan(price)
    else:
        promo, feature = _forward_fill(promo), _forward_fill(feature)
    grids[c.PROMO] = np.nan_to_num(promo, nan=0.0).astype(bool)
    grids[c.FEATURE] = np.nan_to_num(feature, nan=0.0)
    first = np.full(grid.n_items, grid.periods, np.int64)
    rows, cols = grid.rows(history[c.ITEM_ID]), grid.columns(history[c.DATE])
    ok = ~np.isnan(rows)
    np.minimum.at(first, rows[ok].astype(np.int64), np.clip(cols[ok], 0, grid.periods))
    return first


def _prices_paid(grids: dict[str, np.ndarray], grid: Grid, list_price: np.ndarray) -> None:
    """Without a price history, the last price paid holds (the list price before the first sale)."""
    price = _forward_fill(grids[AVG_PRICE_PAID])
    grids[c.PRICE] = np.where(np.isnan(price), list_price[:, None], price)
    grids[c.PROMO] = grid.empty(bool)
    grids[c.FEATURE] = grid.empty()


def _stock(grids: dict[str, np.ndarray], grid: Grid, stock_history: pd.DataFrame | None) -> None:
    if stock_history is not None and len(stock_history):
        stock = _forward_fill(_log_grid(stock_history, c.STOCK, grid))
    else:
        stock = grid.empty() * np.nan
    grids[STOCK_START] = stock
    with np.errstate(invalid="ignore"):
        grids[STOCK_OUT] = (stock == 0) | ((stock > 0) & (grids[UNITS] >= stock))


def _velocities(
    units: np.ndarray, recorded: np.ndarray, first: np.ndarray, windows: tuple[int, ...], period_days: int
) -> dict[str, np.ndarray]:
    """Trailing mean units per recorded period over each window (in days, at least one
    period), from the item's first period, never including the period itself."""
    n_items, periods = units.shape
    index = np.arange(periods)
    zero = np.zeros((n_items, 1))
    cumulative = np.concatenate([zero, np.cumsum(np.where(recorded, units, 0), axis=1)], axis=1)
    counted = np.concatenate([zero, np.cumsum(recorded, axis=1)], axis=1)
    rows = np.arange(n_items)[:, None]
    velocities = {}
    for window in windows:
        span = max(1, round(window / period_days))
        lower = np.clip(np.maximum(index - span, first[:, None]), 0, periods)
        seen = counted[rows, index[None, :]] - counted[rows, lower]
        total = cumulative[rows, index[None, :]] - cumulative[rows, lower]
        with np.errstate(invalid="ignore", divide="ignore"):
            velocities[velocity_column(window)] = np.where(seen > 0, total / seen, np.nan)
    return velocities


def _table(
    grid: Grid,
    grids: dict[str, np.ndarray],
    velocities: dict[str, np.ndarray],
    first: np.ndarray,
    list_price: np.ndarray,
) -> pd.DataFrame:
    active = (np.arange(grid.periods)[None, :] >= first[:, None]).ravel()
    n = grid.periods

    def flat(name: str, default: object = 0) -> np.ndarray:
        values = grids.get(name)
        return np.full(active.sum(), default) if values is None else values.ravel()[active]

    table = pd.DataFrame(
        {
            c.ITEM_ID: pd.Categorical.from_codes(
                np.repeat(np.arange(grid.n_items), n)[active], categories=pd.Index(grid.item_ids)
            ),
            c.DATE: np.tile(grid.dates.to_numpy(), grid.n_items)[active],
            UNITS: flat(UNITS).astype(np.int32),
            REVENUE: flat(REVENUE).round(2),
            AVG_PRICE_PAID: flat(AVG_PRICE_PAID),
            c.PRICE: flat(c.PRICE),
            c.LIST_PRICE: np.repeat(list_price, n)[active],
            c.PROMO: flat(c.PROMO).astype(bool),
            c.FEATURE: flat(c.FEATURE).astype(float),
            RECORDED: flat(RECORDED, True).astype(bool),
            STOCK_START: pd.array(flat(STOCK_START), dtype="Float64").astype("Int32"),
            STOCK_OUT: flat(STOCK_OUT).astype(bool),
            VIEWS: flat(VIEWS).astype(np.int32),
            ADD_TO_CARTS: flat(ADD_TO_CARTS).astype(np.int32),
            **{name: values.ravel()[active] for name, values in velocities.items()},
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


def _log_grid(log: pd.DataFrame, column: str, grid: Grid) -> np.ndarray:
    """A log's values on the items x periods grid, NaN where the log has no row (the last
    row of a period wins; a row before the first period applies from the first period)."""
    values = np.full((grid.n_items, grid.periods), np.nan)
    rows, cols = grid.rows(log[c.ITEM_ID]), grid.columns(log[c.DATE])
    ok = ~np.isnan(rows) & (cols < grid.periods)
    frame = pd.DataFrame(
        {
            "row": rows[ok].astype(np.int64),
            "col": np.maximum(cols[ok], 0),
            "value": log[column].astype(float).to_numpy()[ok],
            "date": pd.to_datetime(log[c.DATE]).to_numpy()[ok],
        }
    )
    frame = frame.sort_values(["row", "col", "date"], kind="stable").drop_duplicates(
        ["row", "col"], keep="last"
    )
    values[frame["row"].to_numpy(), frame["col"].to_numpy()] = frame["value"].to_numpy()
    return values
