"""Import of the canonical tables themselves, as CSV (plain or gzipped) or Parquet.

PATH is a directory holding `orders.csv` (required) and any of `customers`, `products`,
`events`, `price_history`, `stock_history` (each `.csv`, `.csv.gz` or `.parquet`), or a
single orders file. Tables that are absent are derived where the design says so:
products from the order lines, customers from the order customer ids.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from intake.coerce import coerce_table, to_canonical_dtypes
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
from intake.schemas import SCHEMAS, TableSchema
from storewise import columns as c
from storewise.errors import DataError
from storewise.ids import normalize_customer_ids
from storewise.shop import ShopSettings

SUFFIXES = (".parquet", ".csv", ".csv.gz")


def find_table_files(path: Path) -> dict[str, Path]:
    if not path.exists():
        raise DataError("not found", path=path)
    if path.is_file():
        return {c.ORDERS: path}
    found = {}
    for name in c.TABLES:
        candidates = [path / f"{name}{suffix}" for suffix in SUFFIXES if (path / f"{name}{suffix}").exists()]
        if len(candidates) > 1:
            raise DataError(
                f"two files for table '{name}': {', '.join(p.name for p in candidates)}; keep one",
                path=path,
            )
        if candidates:
            found[name] = candidates[0]
    if c.ORDERS not in found:
        raise DataError(
            "no orders file (orders.csv, orders.csv.gz or orders.parquet); orders are required",
            path=path,
        )
    return found


def import_canonical(path: Path, *, consent: Consent, timezone: str, currency: str) -> ImportResult:
    files = find_table_files(path)
    tz = ZoneInfo(timezone)
    tables: dict[str, pd.DataFrame] = {}
    problems: list[pd.DataFrame] = []
    counts: dict[str, int] = {}
    for name, file in files.items():
        raw = read_any(file)
        _require_columns(raw, SCHEMAS[name], file)
        rows = source_rows(raw)
        table, rejected = coerce_table(raw, SCHEMAS[name], tz, rows, file.name)
        if c.CUSTOMER_ID in table:  # '17850.0' in one file and '17850' in another are one customer
            table[c.CUSTOMER_ID] = normalize_customer_ids(table[c.CUSTOMER_ID])
        table, duplicates = _drop_duplicate_ids(table, SCHEMAS[name], file.name)
        tables[name] = table
        problems += [rejected, duplicates]
        counts[f"{name}: rows read"] = len(raw)
        counts[f"{name}: rejected"] = int(rejected["source_row"].nunique()) + len(duplicates)

    notes = []
    if c.PRODUCTS not in tables:
        tables[c.PRODUCTS] = _products_from_orders(tables[c.ORDERS])
        notes.append(
            "No products file: products derived from the order lines (name = id, category 'unknown')."
        )
    # orders first: customers derived from orders must come from the orders that are kept
    for name in (c.ORDERS, c.EVENTS, c.PRICE_HISTORY, c.STOCK_HISTORY):
        if name == c.EVENTS and c.CUSTOMERS not in tables:
            tables[c.CUSTOMERS] = derive_customers(tables[c.ORDERS], None, consent)
            notes.append(
                f"No customers file: customers derived from the orders, consent assumed: {consent.value}."
            )
        if name in tables:
            tables[name], orphans = _drop_orphans(tables[name], name, tables, files[name].name)
            problems.append(orphans)
            counts[f"{name}: rejected"] += len(orphans)
    tables = {name: table.reset_index(drop=True) for name, table in tables.items()}
    for name, table in tables.items():
        counts[f"{name}: imported"] = len(table)
    if tables[c.ORDERS].empty:
        raise DataError("no valid order lines; see the import report", path=files[c.ORDERS])

    report = combine_reports(problems)
    summary: dict[str, object] = {
        "source": str(path),
        "format": "canonical",
        **counts,
        "consent assumed": consent.value,
    }
    settings = ShopSettings(
        name=path.stem if path.is_file() else path.name,
        currency=currency,
        timezone=timezone,
        source="canonical",
    )
    return ImportResult(tables, report, summary, settings, notes)


def _require_columns(raw: pd.DataFrame, schema: TableSchema, file: Path) -> None:
    for spec in schema.columns:
        if spec.name not in raw.columns and not spec.nullable:
            raise DataError(
                f"missing column '{spec.name}' (the file has {', '.join(map(repr, raw.columns))})",
                path=file,
                column=spec.name,
            )


def _drop_duplicate_ids(
    table: pd.DataFrame, schema: TableSchema, file: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the first row of each id; report the others. `table` is indexed by source row."""
    if not schema.unique:
        return table, report_lines(file, np.array([], int), "", [], [], Action.DUPLICATE)
    rows = table.index.to_numpy()
    repeated = table.duplicated(list(schema.unique), keep="first").to_numpy()
    first = (
        pd.Series(rows)
        .groupby(table.groupby(list(schema.unique), sort=False).ngroup().to_numpy())
        .transform("min")
    )
    key = ", ".join(schema.unique)
    report = report_lines(
        file,
        rows[repeated],
        key,
        table.loc[repeated, schema.unique[0]].to_numpy(),
        [f"duplicate {key} (first at row {r})" for r in first.to_numpy()[repeated]],
        Action.DUPLICATE,
    )
    return table[~repeated], report


def _drop_orphans(
    table: pd.DataFrame, name: str, tables: dict[str, pd.DataFrame], file: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows that name an item or customer the shop does not have are rejected."""
    orphan = np.zeros(len(table), bool)
    parts = []
    for key in SCHEMAS[name].foreign_keys:
        target = tables.get(key.table)
        if target is None:
            continue
        unknown = (
            table[key.column].notna() & ~table[key.column].isin(target[key.target])
        ).to_numpy() & ~orphan
        parts.append(
            report_lines(
                file,
                table.index.to_numpy()[unknown],
                key.column,
                table[key.column][unknown].to_numpy(),
                f"not in {key.table}",
                Action.REJECTED,
            )
        )
        orphan |= unknown
    return table[~orphan], combine_reports(parts)


def _products_from_orders(orders: pd.DataFrame) -> pd.DataFrame:
    sales = orders[~orders[c.RETURNED]] if (~orders[c.RETURNED]).any() else orders
    price = sales.groupby(c.ITEM_ID)[c.UNIT_PRICE].agg(lambda values: values.mode().max())
    items = sorted(orders[c.ITEM_ID].unique())
    products = pd.DataFrame(
        {
            c.ITEM_ID: items,
            c.NAME: items,
            c.CATEGORY: "unknown",
            c.TAGS: None,
            c.LIST_PRICE: price.reindex(items)
            .fillna(orders.groupby(c.ITEM_ID)[c.UNIT_PRICE].median())
            .to_numpy(),
            c.UNIT_COST: np.nan,
            c.STOCK: pd.array([pd.NA] * len(items), dtype="Int64"),
        }
    )
    products.loc[products[c.LIST_PRICE] <= 0, c.LIST_PRICE] = np.nan
    return to_canonical_dtypes(products.dropna(subset=[c.LIST_PRICE]), SCHEMAS[c.PRODUCTS])
