"""The weekly sales import: every row accounted for, bad rows named, a missing column one
error that leaves the shop as it was."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from intake.importers.common import write_import
from intake.importers.weekly_sales import import_weekly_sales
from storewise import columns as c
from storewise.errors import DataError
from storewise.shop import ShopPaths
from tests.helpers import DOMINICKS_SAMPLE as DOMINICKS

HEADER = "store,item_id,item_name,size_oz,week_start,units,unit_price,deal,feature"
ROWS = [
    "1,A64,Brand A 64oz,64,2024-01-01,10,2.50,0,0",  # line 2
    "1,A64,Brand A 64oz,64,2024-01-08,0,2.60,0,0",  # line 3: zero units, price recorded
    "1,A64,Brand A 64oz,64,2024-01-08,0,2.60,0,0",  # line 4: exact copy of line 3
    "1,A64,Brand A 64oz,64,2024-01-15,7,abc,0,0",  # line 5: unreadable price
    "2,A64,Brand A 64oz,64,2024-01-01,4,2.40,1,0.5",  # line 6: store 2's own item
    "2,B32,Brand B 32oz,32,2024-01-01,3,1.90,0,0",  # line 7
]


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_row_is_accounted_for_and_bad_rows_are_named(tmp_path: Path) -> None:
    result = import_weekly_sales(write_csv(tmp_path / "sales.csv", [HEADER, *ROWS]))
    s = result.summary
    assert s["rows read"] == 6
    assert s["rows imported with sales"] == 3  # lines 2, 6, 7
    assert s["rows imported without sales (price recorded, zero units)"] == 1  # line 3
    assert s["duplicates"] == 1
    assert s["rejected"] == 1
    assert s["stores"] == 2
    assert s["products"] == 2
    assert s["priced items (store x product)"] == 3  # A64 in stores 1 and 2, B32 in store 2
    report = result.report.set_index("source_row")
    assert report.loc[5, "column"] == "unit_price"
    assert report.loc[5, "action"] == "rejected"
    assert report.loc[4, "action"] == "duplicate"
    products = result.tables[c.PRODUCTS].set_index(c.ITEM_ID)
    assert set(products[c.PRODUCT]) == {"A64", "B32"}
    assert products.groupby(c.PRODUCT).size().to_dict() == {"A64": 2, "B32": 1}


def test_a_missing_column_is_one_error_and_the_shop_is_left_as_it_was(tmp_path: Path) -> None:
    shop = ShopPaths(tmp_path / "shop")
    write_import(shop, import_weekly_sales(write_csv(tmp_path / "good.csv", [HEADER, *ROWS])))
    before = pd.read_parquet(shop.table(c.PRODUCTS))
    no_price = [",".join(line.split(",")[:6] + line.split(",")[7:]) for line in [HEADER, *ROWS]]
    with pytest.raises(DataError, match="unit_price"):
        import_weekly_sales(write_csv(tmp_path / "bad.csv", no_price))
    pd.testing.assert_frame_equal(pd.read_parquet(shop.table(c.PRODUCTS)), before)


def test_the_shared_dominicks_sample_adds_up() -> None:
    raw = pd.read_csv(DOMINICKS)
    result = import_weekly_sales(DOMINICKS)
    s = {key: value for key, value in result.summary.items() if isinstance(value, int)}
    accounted = (
        s["rows imported with sales"]
        + s["rows imported without sales (price recorded, zero units)"]
        + s["duplicates"]
        + s["rejected"]
    )
    assert s["rows read"] == len(raw) == accounted
    assert s["stores"] == raw["store"].nunique() == 22
    assert s["products"] == raw["item_id"].nunique() == 11
    assert s["priced items (store x product)"] == len(raw.groupby(["store", "item_id"]))
    assert s["weeks"] == raw["week_start"].nunique() == 121
    history = result.tables[c.PRICE_HISTORY]
    assert len(history) == len(raw) - s["duplicates"] - s["rejected"]
