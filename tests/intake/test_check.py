"""`data check` finds what is wrong with a shop's tables and names table and column."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd

from intake.check import check_tables
from intake.demo.generate import GeneratedShop
from storewise import columns as c

TZ = ZoneInfo("Asia/Kuala_Lumpur")


def problems_of(tables: dict[str, pd.DataFrame]) -> list[str]:
    return [str(problem) for problem in check_tables(tables, TZ).errors]


def test_generated_shop_passes_with_a_summary(small_generated: GeneratedShop) -> None:
    report = check_tables(small_generated.tables, TZ)
    assert report.ok
    orders = small_generated.tables[c.ORDERS]
    assert report.summary["order lines"] == (~orders[c.RETURNED]).sum()
    assert report.summary["return lines"] == orders[c.RETURNED].sum()
    assert report.summary["customers rows"] == len(small_generated.tables[c.CUSTOMERS])


def test_duplicate_ids_bad_values_and_unknown_keys_are_found(
    small_generated: GeneratedShop,
) -> None:
    tables = {name: table.copy() for name, table in small_generated.tables.items()}
    products = pd.concat([tables[c.PRODUCTS], tables[c.PRODUCTS].iloc[[0]]], ignore_index=True)
    products.loc[2, c.LIST_PRICE] = -1.0
    tables[c.PRODUCTS] = products
    tables[c.ORDERS].loc[5, c.ITEM_ID] = "NOPE"
    tables[c.EVENTS].loc[3, c.EVENT] = "teleport"
    found = problems_of(tables)
    first_id = products.loc[0, c.ITEM_ID]
    assert (
        f"[error] products.item_id: 1 rows: duplicate id ('{first_id}') (first at row {len(products) - 1})"
        in found
    )
    assert "[error] products.list_price: 1 rows: '-1.0' must be more than 0 (first at row 2)" in found
    assert any(
        p.startswith("[error] orders.item_id: 1 rows: ids not in products.item_id (e.g. 'NOPE')")
        for p in found
    )
    assert any(
        p.startswith("[error] events.event: 1 rows: 'teleport' is not one of view, search") for p in found
    )


def test_naive_timestamps_and_missing_orders_are_errors(small_generated: GeneratedShop) -> None:
    tables = {name: table.copy() for name, table in small_generated.tables.items()}
    tables[c.EVENTS][c.AT] = tables[c.EVENTS][c.AT].dt.tz_localize(None)
    del tables[c.ORDERS]
    found = problems_of(tables)
    assert "[error] events.at: timestamps have no time zone (canonical times are zone-aware)" in found
    assert "[error] orders.*: required table is missing" in found
