"""Import of a sales-by-item-and-week export (or by day): what shops that set prices often
can give, and what shows whether an elasticity predicts what a price change does.

One row per store, item and week: `store` (optional), `item_id`, `item_name` (optional),
`size_oz` (optional), `week_start` (or `date`), `units`, `unit_price`, `deal` (optional,
0/1), `feature` (optional, the share of the week in feature advertising, 0 to 1), and
`category` (optional: the shelf the item competes on; without it every item of a store
shares one shelf).

Prices are set per store, so each store's product is its own priced item (`TRP64@9`),
and the products table says which product it is (`product`) in which `store`, so that
models pool a product across stores. What the rows become:

- a row with units: one order line (a guest order: the export has no customers) at the
  start of its period, and a price-history row with the deal and feature flags;
- a row with zero units: a price-history row only (the price was on the shelf, no sales);
- a period missing from a series: nothing (no record, not zero sales; the price history
  is a log of the periods recorded, and the demand signals keep the two apart);
- an exact copy of an earlier row: reported as a duplicate, imported once;
- another row for the same store, item and period with different values: rejected (the
  first one is kept), naming the first;
- a value that cannot be read, or a week that does not start on the file's weekday:
  rejected, with the column and the reason.

Every row is counted in the summary (imported with sales + imported without sales +
duplicates + rejected = rows read); a missing column is one error and nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from intake.coerce import Parsed, parse_bool, parse_date, parse_number, to_canonical_dtypes
from intake.importers.common import (
    Action,
    Consent,
    ImportResult,
    combine_reports,
    derive_customers,
    read_any,
    report_lines,
    source_rows,
)
from intake.schemas import SCHEMAS
from storewise import columns as c
from storewise.errors import DataError
from storewise.ids import normalize_ids
from storewise.shop import ShopSettings

Period = Literal["day", "week"]

# canonical name -> accepted spellings (compared without case, spaces or underscores)
COLUMN_ALIASES = {
    "store": ("store", "storeid", "storenumber", "shop"),
    "item_id": ("itemid", "item", "sku", "productid", "upc"),
    "item_name": ("itemname", "name", "description", "productname"),
    "size_oz": ("sizeoz", "size"),
    "period_start": ("weekstart", "week", "date", "day", "periodstart"),
    "units": ("units", "quantity", "unitssold"),
    "unit_price": ("unitprice", "price"),
    "deal": ("deal", "promo", "promotion"),
    "feature": ("feature", "featured"),
    "category": ("category", "shelf"),
}
REQUIRED = ("item_id", "period_start", "units", "unit_price")
DISPLAY = {"period_start": "week_start", "item_id": "item_id", "units": "units", "unit_price": "unit_price"}
DEFAULT_SHELF = "all products"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class Rows:
    """The parsed columns of the export, one entry per source row."""

    store: pd.Series
    item: pd.Series
    name: pd.Series
    category: pd.Series
    period: Parsed
    units: Parsed
    price: Parsed
    deal: Parsed
    feature: Parsed
    size: Parsed


def import_weekly_sales(
    path: Path, *, period: Period = "week", timezone: str = "UTC", currency: str = "USD"
) -> ImportResult:
    raw = read_any(path)
    columns = match_columns(raw, path, period)
    rows = source_rows(raw)
    parsed = parse_rows(raw, columns, ZoneInfo(timezone))
    problems, rejected = reject_unreadable(path.name, raw, columns, parsed, rows)
    misaligned, anchor = misaligned_periods(parsed.period.values, rejected, period)
    problems.append(
        report_lines(
            path.name,
            rows[misaligned],
            columns["period_start"],
            raw[columns["period_start"]][misaligned],
            [
                f"{when:%Y-%m-%d} is a {WEEKDAYS[when.day_of_week]}; this file's weeks start on {anchor}"
                for when in parsed.period.values[misaligned]
            ],
            Action.REJECTED,
        )
    )
    rejected |= misaligned
    duplicate, conflict, repeats = repeated_keys(raw, parsed, rejected, rows, path.name)
    problems += repeats
    rejected |= conflict
    kept = ~rejected & ~duplicate
    if not kept.any():
        raise DataError("no readable rows; see the import report for the reasons", path=path)
    tables = canonical_tables(parsed, kept, ZoneInfo(timezone))
    units = parsed.units.values.fillna(0).to_numpy()
    summary: dict[str, object] = {
        "source": str(path),
        "format": "weekly-sales",
        "period": period,
        "rows read": len(raw),
        "rows imported with sales": int((kept & (units > 0)).sum()),
        "rows imported without sales (price recorded, zero units)": int((kept & (units == 0)).sum()),
        "duplicates": int(duplicate.sum()),
        "rejected": int(rejected.sum()),
        "stores": int(parsed.store[kept].nunique()),
        "products": int(parsed.item[kept].nunique()),
        "priced items (store x product)": len(tables[c.PRODUCTS]),
        f"{period}s": int(parsed.period.values[kept].nunique()),
    }
    _assert_accounted(summary)
    notes = _notes(parsed, kept, columns, period)
    settings = ShopSettings(
        name=path.name.split(".")[0],
        currency=currency,
        timezone=timezone,
        source="weekly-sales",
        period=period,
        price_log="periods",
    )
    return ImportResult(tables, combine_reports(problems), summary, settings, notes)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.lower())


def match_columns(raw: pd.DataFrame, path: Path, period: Period) -> dict[str, str]:
    """Canonical name -> the file's column; a missing required column is one error."""
    by_key = {_key(name): name for name in raw.columns}
    found = {}
    for canonical, spellings in COLUMN_ALIASES.items():
        match = next((by_key[s] for s in spellings if s in by_key), None)
        if match is not None:
            found[canonical] = match
        elif canonical in REQUIRED:
            shown = DISPLAY[canonical] if period == "week" or canonical != "period_start" else "date"
            raise DataError(
                f"missing column '{shown}'; the file has {', '.join(map(repr, raw.columns))}",
                path=path,
                column=shown,
            )
    return found


def _text(raw: pd.DataFrame, columns: dict[str, str], name: str, default: str) -> pd.Series:
    if name not in columns:
        return pd.Series(default, index=raw.index, dtype="str")
    # '9' and '9.0' are one store (spreadsheets write whole numbers as floats)
    return normalize_ids(raw[columns[name]].astype("str"))


def _number(raw: pd.DataFrame, columns: dict[str, str], name: str, default: float) -> Parsed:
    if name not in columns:
        values = pd.Series(default, index=raw.index, dtype="float64")
        return Parsed(values, np.zeros(len(raw), bool), pd.Series("", index=raw.index, dtype="str"))
    return parse_number(raw[columns[name]], integer=False)


def parse_rows(raw: pd.DataFrame, columns: dict[str, str], tz: ZoneInfo) -> Rows:
    deal = (
        parse_bool(raw[columns["deal"]])
        if "deal" in columns
        else Parsed(
            pd.Series(False, index=raw.index, dtype="boolean"),
            np.zeros(len(raw), bool),
            pd.Series("", index=raw.index, dtype="str"),
        )
    )
    return Rows(
        store=_text(raw, columns, "store", ""),
        item=_text(raw, columns, "item_id", ""),
        name=_text(raw, columns, "item_name", ""),
        category=_text(raw, columns, "category", ""),
        period=parse_date(raw[columns["period_start"]], tz),
        units=parse_number(raw[columns["units"]], integer=True),
        price=parse_number(raw[columns["unit_price"]], integer=False),
        deal=deal,
        feature=_number(raw, columns, "feature", 0.0),
        size=_number(raw, columns, "size_oz", np.nan),
    )


def _checks(parsed: Rows) -> list[tuple[str, np.ndarray, pd.Series]]:
    """(column, bad rows, reasons) for every rule a value must meet."""

    def rule(mask: np.ndarray, reason: str) -> tuple[np.ndarray, pd.Series]:
        return mask, pd.Series(reason, index=parsed.item.index, dtype="str")

    def unreadable(values: Parsed) -> tuple[np.ndarray, pd.Series]:
        missing = values.values.isna().to_numpy() & ~values.invalid
        reasons = values.reasons.where(~pd.Series(missing, index=values.reasons.index), "missing value")
        return values.invalid | missing, reasons

    units = parsed.units.values.astype("float64").to_numpy(na_value=np.nan)
    price = parsed.price.values.astype("float64").to_numpy(na_value=np.nan)
    feature = parsed.feature.values.astype("float64").to_numpy(na_value=np.nan)
    size = parsed.size.values.astype("float64").to_numpy(na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return [
            ("store", *rule((parsed.store == "").to_numpy() & _has(parsed.store), "missing value")),
            ("item_id", *rule((parsed.item == "").to_numpy(), "missing value")),
            ("period_start", *unreadable(parsed.period)),
            ("units", *unreadable(parsed.units)),
            ("units", *rule(units < 0, "negative units (a return or adjustment, not weekly sales)")),
            ("unit_price", *unreadable(parsed.price)),
            ("unit_price", *rule(price <= 0, "price must be more than 0")),
            ("deal", *unreadable(parsed.deal)),
            ("feature", parsed.feature.invalid, parsed.feature.reasons),
            ("feature", *rule((feature < 0) | (feature > 1), "feature must be a share between 0 and 1")),
            ("size_oz", parsed.size.invalid, parsed.size.reasons),
            ("size_oz", *rule(size <= 0, "pack size must be more than 0")),
        ]


def _has(store: pd.Series) -> bool:
    """Whether the export has a store column at all (without one, every row is one store)."""
    return bool((store != "").any())


def reject_unreadable(
    file: str, raw: pd.DataFrame, columns: dict[str, str], parsed: Rows, rows: np.ndarray
) -> tuple[list[pd.DataFrame], np.ndarray]:
    """One report line per row, for the first rule it breaks."""
    rejected = np.zeros(len(raw), bool)
    problems = []
    for name, bad, reasons in _checks(parsed):
        new = np.asarray(bad, bool) & ~rejected
        if not new.any():
            continue
        source = columns.get(name, name)
        values = raw[source][new] if source in raw else pd.Series("", index=raw.index)[new]
        problems.append(report_lines(file, rows[new], source, values, reasons[new], Action.REJECTED))
        rejected |= new
    return problems, rejected


def misaligned_periods(dates: pd.Series, rejected: np.ndarray, period: Period) -> tuple[np.ndarray, str]:
    """Weekly rows whose week does not start on the weekday most rows start on."""
    if period != "week" or rejected.all():
        return np.zeros(len(dates), bool), ""
    weekday = dates.dt.day_of_week.to_numpy()
    anchor = int(pd.Series(weekday[~rejected]).mode().min())
    return ~rejected & (weekday != anchor), WEEKDAYS[anchor]


def repeated_keys(
    raw: pd.DataFrame, parsed: Rows, rejected: np.ndarray, rows: np.ndarray, file: str
) -> tuple[np.ndarray, np.ndarray, list[pd.DataFrame]]:
    """Exact copies (duplicates) and other rows for the same store, item and period
    (conflicts); the first row of each key is kept."""
    live = np.flatnonzero(~rejected)
    keys = pd.DataFrame(
        {"store": parsed.store.to_numpy()[live], "item": parsed.item.to_numpy()[live]}
    ).assign(period=parsed.period.values.to_numpy()[live])
    first = pd.Series(rows[live]).groupby(keys.groupby(list(keys.columns), sort=False).ngroup().to_numpy())
    first_row = first.transform("min").to_numpy()
    later = rows[live] != first_row
    same = raw.iloc[live].duplicated(keep="first").to_numpy()
    duplicate = np.zeros(len(raw), bool)
    conflict = np.zeros(len(raw), bool)
    duplicate[live[later & same]] = True
    conflict[live[later & ~same]] = True
    reports = [
        report_lines(
            file,
            rows[duplicate],
            "*",
            parsed.item[duplicate],
            [f"exact copy of row {r}" for r in first_row[later & same]],
            Action.DUPLICATE,
        ),
        report_lines(
            file,
            rows[conflict],
            "*",
            parsed.item[conflict],
            [
                f"another row for the same store, item and period (row {r}) has other values"
                for r in first_row[later & ~same]
            ],
            Action.REJECTED,
        ),
    ]
    return duplicate, conflict, reports


def item_ids(store: pd.Series, item: pd.Series) -> pd.Series:
    """Each store's product is its own priced item: `TRP64@9`; without stores, the item."""
    return item.where(store == "", item + "@" + store)


def canonical_tables(parsed: Rows, kept: np.ndarray, tz: ZoneInfo) -> dict[str, pd.DataFrame]:
    lines = pd.DataFrame(
        {
            c.ITEM_ID: item_ids(parsed.store, parsed.item)[kept].to_numpy(),
            c.STORE: parsed.store[kept].to_numpy(),
            c.PRODUCT: parsed.item[kept].to_numpy(),
            c.NAME: parsed.name[kept].to_numpy(),
            c.CATEGORY: parsed.category[kept].replace("", DEFAULT_SHELF).to_numpy(),
            c.DATE: parsed.period.values[kept].to_numpy(),
            "units": parsed.units.values[kept].astype("int64").to_numpy(),
            c.PRICE: parsed.price.values[kept].to_numpy(float),
            c.PROMO: parsed.deal.values[kept].fillna(False).astype(bool).to_numpy(),
            c.FEATURE: parsed.feature.values[kept].to_numpy(float),
        }
    ).sort_values([c.ITEM_ID, c.DATE], kind="stable")
    sold = lines[lines["units"] > 0]
    midnight = pd.DatetimeIndex(sold[c.DATE]).tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    orders = pd.DataFrame(
        {
            c.ORDER_ID: (sold[c.ITEM_ID] + "/" + sold[c.DATE].dt.strftime("%Y-%m-%d")).to_numpy(),
            c.CUSTOMER_ID: None,
            c.ITEM_ID: sold[c.ITEM_ID].to_numpy(),
            c.QUANTITY: sold["units"].to_numpy(),
            c.UNIT_PRICE: sold[c.PRICE].to_numpy(),
            c.ORDERED_AT: midnight,
            c.RETURNED: False,
        }
    )
    orders = to_canonical_dtypes(orders, SCHEMAS[c.ORDERS])
    history = to_canonical_dtypes(
        lines[[c.ITEM_ID, c.DATE, c.PRICE, c.PROMO, c.FEATURE]], SCHEMAS[c.PRICE_HISTORY]
    )
    return {
        c.CUSTOMERS: derive_customers(orders, None, Consent.NONE),
        c.PRODUCTS: products_of(lines),
        c.ORDERS: orders.reset_index(drop=True),
        c.PRICE_HISTORY: history.reset_index(drop=True),
    }


def products_of(lines: pd.DataFrame) -> pd.DataFrame:
    """One priced item per store and product: its most used name, its shelf, and as list
    price the price it was most often on the shelf at (the regular price; ties go to the
    higher). Cost and stock are not in a sales export."""
    groups = lines.groupby(c.ITEM_ID, sort=True)
    # the regular price is read from weeks without a deal where an item has any
    has_regular = lines.groupby(c.ITEM_ID)[c.PROMO].transform("min").eq(False).to_numpy()
    regular_weeks = lines[~lines[c.PROMO].to_numpy() | ~has_regular]
    counts = regular_weeks.groupby([c.ITEM_ID, c.PRICE]).size().rename("n").reset_index()
    regular = counts.sort_values(["n", c.PRICE]).groupby(c.ITEM_ID).tail(1).set_index(c.ITEM_ID)[c.PRICE]
    first = groups[[c.STORE, c.PRODUCT, c.CATEGORY]].first()
    names = groups[c.NAME].agg(lambda values: values.mode().iloc[0])
    names = names.where(names != "", first[c.PRODUCT])
    shown = names.where(first[c.STORE] == "", names + " (store " + first[c.STORE] + ")")
    products = pd.DataFrame(
        {
            c.ITEM_ID: first.index,
            c.NAME: shown.to_numpy(),
            c.CATEGORY: first[c.CATEGORY].to_numpy(),
            c.TAGS: (first[c.PRODUCT] + c.TAG_SEPARATOR + "store " + first[c.STORE]).to_numpy(),
            c.LIST_PRICE: regular.reindex(first.index).to_numpy(),
            c.UNIT_COST: np.nan,
            c.STOCK: pd.array([pd.NA] * len(first), dtype="Int64"),
            c.PRODUCT: first[c.PRODUCT].to_numpy(),
            c.STORE: first[c.STORE].where(first[c.STORE] != "", None).to_numpy(),
        }
    )
    return to_canonical_dtypes(products, SCHEMAS[c.PRODUCTS])


def _assert_accounted(summary: dict[str, object]) -> None:
    parts = (
        "rows imported with sales",
        "rows imported without sales (price recorded, zero units)",
        "duplicates",
        "rejected",
    )
    accounted = sum(int(summary[part]) for part in parts)  # type: ignore[call-overload]
    assert accounted == summary["rows read"], (
        f"import lost rows: {accounted} accounted for, {summary['rows read']} read"
    )


def _notes(parsed: Rows, kept: np.ndarray, columns: dict[str, str], period: Period) -> list[str]:
    notes = [
        "A sales export has no customers: every sale is a guest order, and the recommender has "
        "nothing to learn from this shop.",
        "Unit costs are not in the export: pricing assumes the configured cost share of the list "
        "price (pricing.yaml guardrails.default_cost_share) and says so in every reason.",
        f"A {period} missing from a series is not recorded (no sales known), not zero sales.",
    ]
    if "store" not in columns:
        notes.append("No store column: the export is one store.")
    if "category" not in columns:
        notes.append(f"No category column: each store's items share one shelf ('{DEFAULT_SHELF}').")
    price = parsed.price.values.astype("float64").to_numpy(na_value=np.nan)
    series = item_ids(parsed.store, parsed.item)
    median = pd.Series(price[kept]).groupby(series[kept].to_numpy()).transform("median").to_numpy()
    deep = int((price[kept] < 0.5 * median).sum())
    if deep:
        notes.append(
            f"{deep} rows are priced under half their series' median price (deep deals or errors); "
            "they are kept, as the export recorded them."
        )
    return notes
