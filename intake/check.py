"""`storewise data check`: does a shop directory hold valid canonical tables?

Checks types, missing values, ranges and allowed values (with the same column rules the
importer applies), duplicate ids, and foreign keys between tables, and summarizes what
the shop holds, so a person can see at a glance whether the data is what they expect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd

from intake.coerce import parse_column
from intake.schemas import SCHEMAS, TableSchema
from storewise import columns as c

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    table: str
    column: str
    severity: Severity
    message: str
    rows: int = 0
    example_row: int | None = None

    def __str__(self) -> str:
        example = f" (first at row {self.example_row})" if self.example_row is not None else ""
        count = f"{self.rows:,} rows: " if self.rows else ""
        return f"[{self.severity}] {self.table}.{self.column}: {count}{self.message}{example}"


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    summary: dict[str, object] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_tables(tables: dict[str, pd.DataFrame], tz: ZoneInfo) -> CheckReport:
    report = CheckReport()
    for name, table in tables.items():
        schema = SCHEMAS[name]
        report.problems += _check_columns(table, schema, tz)
        report.problems += _check_unique(table, schema)
    for name in SCHEMAS:
        if SCHEMAS[name].required and name not in tables:
            report.problems.append(Problem(name, "*", "error", "required table is missing"))
    report.problems += _check_foreign_keys(tables)
    report.problems += _check_consistency(tables)
    report.summary = summarize(tables)
    return report


def _check_columns(table: pd.DataFrame, schema: TableSchema, tz: ZoneInfo) -> list[Problem]:
    problems = []
    for spec in schema.columns:
        if spec.name not in table.columns and spec.optional:
            continue
        if spec.name not in table.columns:
            problems.append(Problem(schema.name, spec.name, "error", "column is missing"))
            continue
        series = table[spec.name]
        if spec.kind == "timestamp" and pd.api.types.is_datetime64_dtype(series):
            problems.append(
                Problem(
                    schema.name,
                    spec.name,
                    "error",
                    "timestamps have no time zone (canonical times are zone-aware)",
                )
            )
            continue
        parsed = parse_column(series, spec, tz)
        if parsed.invalid.any():
            reasons = parsed.reasons[parsed.invalid]
            first = int(parsed.invalid.argmax())
            problems.append(
                Problem(
                    schema.name,
                    spec.name,
                    "error",
                    f"{reasons.iloc[0]}",
                    rows=int(parsed.invalid.sum()),
                    example_row=first,
                )
            )
    extra = [name for name in table.columns if name not in schema.column_names]
    if extra:
        problems.append(
            Problem(
                schema.name,
                ",".join(extra),
                "warning",
                "columns not in the canonical schema are ignored",
            )
        )
    return problems


def _check_unique(table: pd.DataFrame, schema: TableSchema) -> list[Problem]:
    if not schema.unique or not set(schema.unique) <= set(table.columns):
        return []
    duplicated = table.duplicated(list(schema.unique), keep="first").to_numpy()
    if not duplicated.any():
        return []
    key = ", ".join(schema.unique)
    first = int(duplicated.argmax())
    value = ", ".join(str(table[column].iloc[first]) for column in schema.unique)
    return [
        Problem(
            schema.name,
            key,
            "error",
            f"duplicate id ('{value}')",
            rows=int(duplicated.sum()),
            example_row=first,
        )
    ]


def _check_foreign_keys(tables: dict[str, pd.DataFrame]) -> list[Problem]:
    problems = []
    for name, table in tables.items():
        for key in SCHEMAS[name].foreign_keys:
            target = tables.get(key.table)
            if target is None or key.column not in table.columns or key.target not in target.columns:
                continue
            values = table[key.column]
            unknown = (values.notna() & ~values.isin(target[key.target])).to_numpy()
            if unknown.any():
                first = int(unknown.argmax())
                problems.append(
                    Problem(
                        name,
                        key.column,
                        "error",
                        f"ids not in {key.table}.{key.target} (e.g. '{values.iloc[first]}')",
                        rows=int(unknown.sum()),
                        example_row=first,
                    )
                )
    return problems


def _check_consistency(tables: dict[str, pd.DataFrame]) -> list[Problem]:
    problems = []
    products = tables.get(c.PRODUCTS)
    if products is not None and {c.UNIT_COST, c.LIST_PRICE} <= set(products.columns):
        above = (products[c.UNIT_COST] > products[c.LIST_PRICE]).fillna(False).to_numpy()
        if above.any():
            problems.append(
                Problem(
                    c.PRODUCTS,
                    c.UNIT_COST,
                    "warning",
                    "unit cost above list price (pricing will hold such items at cost plus margin)",
                    rows=int(above.sum()),
                    example_row=int(above.argmax()),
                )
            )
    events = tables.get(c.EVENTS)
    if events is not None and {c.ITEM_ID, c.EVENT} <= set(events.columns):
        no_item = (events[c.ITEM_ID].isna() & (events[c.EVENT] != c.SEARCH)).to_numpy()
        if no_item.any():
            problems.append(
                Problem(
                    c.EVENTS,
                    c.ITEM_ID,
                    "error",
                    "missing item on an event other than search",
                    rows=int(no_item.sum()),
                    example_row=int(no_item.argmax()),
                )
            )
    return problems


def summarize(tables: dict[str, pd.DataFrame]) -> dict[str, object]:
    summary: dict[str, object] = {f"{name} rows": len(table) for name, table in tables.items()}
    orders = tables.get(c.ORDERS)
    if (
        orders is not None
        and len(orders)
        and {c.ORDERED_AT, c.RETURNED, c.CUSTOMER_ID} <= set(orders.columns)
    ):
        sales = orders[~orders[c.RETURNED].astype(bool)]
        summary["period"] = f"{orders[c.ORDERED_AT].min():%Y-%m-%d} to {orders[c.ORDERED_AT].max():%Y-%m-%d}"
        summary["orders"] = int(sales[c.ORDER_ID].nunique())
        summary["order lines"] = len(sales)
        summary["return lines"] = int(orders[c.RETURNED].astype(bool).sum())
        summary["guest order lines"] = int(sales[c.CUSTOMER_ID].isna().sum())
        summary["customers who ordered"] = int(sales[c.CUSTOMER_ID].nunique())
        summary["items sold"] = int(sales[c.ITEM_ID].nunique())
    events = tables.get(c.EVENTS)
    if events is not None and c.EVENT in events.columns:
        for event, count in events[c.EVENT].value_counts().items():
            summary[f"events: {event}"] = int(count)
    customers = tables.get(c.CUSTOMERS)
    if customers is not None and c.CONSENT_PERSONALIZATION in customers.columns:
        summary["customers consenting to personalization"] = int(customers[c.CONSENT_PERSONALIZATION].sum())
        summary["customers consenting to marketing"] = int(customers[c.CONSENT_MARKETING].sum())
    return summary
