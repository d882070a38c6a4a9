"""Import of canonical tables from CSV or Parquet, and what is derived when tables are absent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from intake.demo.generate import GeneratedShop
from intake.importers.canonical import import_canonical
from intake.importers.common import Consent
from storewise import columns as c
from storewise.errors import DataError

TZ = "Asia/Kuala_Lumpur"


def export(generated: GeneratedShop, directory: Path, suffix: str) -> Path:
    directory.mkdir()
    for name, table in generated.tables.items():
        if suffix == ".parquet":
            table.to_parquet(directory / f"{name}.parquet", index=False)
        else:
            table.to_csv(directory / f"{name}{suffix}", index=False)
    return directory


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_round_trip_gives_the_same_tables(
    small_generated: GeneratedShop, tmp_path: Path, suffix: str
) -> None:
    source = export(small_generated, tmp_path / "export", suffix)
    result = import_canonical(source, consent=Consent.NONE, timezone=TZ, currency="RM")
    assert result.report.empty
    for name, original in small_generated.tables.items():
        pd.testing.assert_frame_equal(result.tables[name], original, check_dtype=False, obj=name)


def write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def test_bad_values_are_rejected_with_row_column_and_reason(tmp_path: Path) -> None:
    write(
        tmp_path / "products.csv",
        """
item_id,name,category,tags,list_price,unit_cost,stock
A1,Ring,ring,,59.90,20,5
A2,Chain,chain,,-5,2,5
A1,Ring again,ring,,59.90,20,5
""",
    )
    write(
        tmp_path / "orders.csv",
        """
order_id,customer_id,item_id,quantity,unit_price,ordered_at,returned
O1,C1,A1,1,59.90,2026-01-05 10:00:00,false
O2,C1,A1,1,59.90,2026-02-30 10:00:00,false
O3,C2,ZZ,1,10.00,2026-01-06 10:00:00,false
O4,,A1,2,55.00,2026-01-07T10:00:00+00:00,true
""",
    )
    result = import_canonical(tmp_path, consent=Consent.PERSONALIZATION, timezone=TZ, currency="RM")
    report = result.report.set_index(["file", "source_row"])
    assert report.loc[("products.csv", 3), "reason"] == "'-5' must be more than 0"
    assert report.loc[("products.csv", 3), "column"] == c.LIST_PRICE
    assert report.loc[("products.csv", 4), "reason"] == "duplicate item_id (first at row 2)"
    assert report.loc[("orders.csv", 3), "reason"] == "'2026-02-30 10:00:00' is not a date and time"
    assert report.loc[("orders.csv", 3), "column"] == c.ORDERED_AT
    assert report.loc[("orders.csv", 4), "reason"] == "not in products"
    assert report.loc[("orders.csv", 4), "value"] == "ZZ"
    orders = result.tables[c.ORDERS]
    assert list(orders[c.ORDER_ID]) == ["O1", "O4"]
    assert orders[c.ORDERED_AT].iloc[1] == pd.Timestamp("2026-01-07 18:00", tz=TZ), "offsets are converted"
    assert result.summary["orders: rows read"] == 4
    assert result.summary["orders: imported"] == 2
    customers = result.tables[c.CUSTOMERS]
    assert list(customers[c.CUSTOMER_ID]) == ["C1"], "customers derived from the kept orders"
    assert customers[c.CONSENT_PERSONALIZATION].all()


def test_orders_alone_derive_products_and_customers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "orders.csv",
        """
order_id,customer_id,item_id,quantity,unit_price,ordered_at,returned
O1,C1,A1,1,10.00,2026-01-05 10:00:00,0
O2,C2,A1,1,12.00,2026-01-06 10:00:00,0
O3,C2,A1,1,12.00,2026-01-07 10:00:00,0
""",
    )
    result = import_canonical(path, consent=Consent.NONE, timezone=TZ, currency="RM")
    products = result.tables[c.PRODUCTS]
    assert products[[c.ITEM_ID, c.LIST_PRICE, c.CATEGORY]].values.tolist() == [["A1", 12.0, "unknown"]]
    assert not result.tables[c.CUSTOMERS][c.CONSENT_PERSONALIZATION].any()
    assert any("derived" in note for note in result.notes)


def test_missing_column_is_one_error_naming_file_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "orders.csv",
        "order_id,customer_id,item_id,quantity,ordered_at,returned\nO1,C1,A1,1,2026-01-05,0",
    )
    with pytest.raises(DataError) as caught:
        import_canonical(tmp_path, consent=Consent.NONE, timezone=TZ, currency="RM")
    assert caught.value.message.startswith(f"{path}, column 'unit_price': missing column 'unit_price'")


def test_a_directory_without_orders_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "products.csv", "item_id,name,category,list_price\nA1,Ring,ring,10")
    with pytest.raises(DataError, match="no orders file"):
        import_canonical(tmp_path, consent=Consent.NONE, timezone=TZ, currency="RM")


def test_next_delivery_is_an_optional_date(tmp_path: Path) -> None:
    write(
        tmp_path / "products.csv",
        """
item_id,name,category,tags,list_price,unit_cost,stock,next_delivery
A1,Ring,ring,,59.90,20,5,2026-02-03
A2,Chain,chain,,19.90,8,0,
A3,Charm,charm,,9.90,3,4,2026-02-30
""",
    )
    write(
        tmp_path / "orders.csv",
        """
order_id,customer_id,item_id,quantity,unit_price,ordered_at,returned
O1,C1,A1,1,59.90,2026-01-05 10:00:00,false
""",
    )
    result = import_canonical(tmp_path, consent=Consent.PERSONALIZATION, timezone=TZ, currency="RM")
    report = result.report.set_index(["file", "source_row"])
    assert report.loc[("products.csv", 4), "column"] == c.NEXT_DELIVERY
    assert report.loc[("products.csv", 4), "reason"] == "'2026-02-30' is not a date"
    products = result.tables[c.PRODUCTS].set_index(c.ITEM_ID)
    assert products.loc["A1", c.NEXT_DELIVERY] == pd.Timestamp("2026-02-03")
    assert pd.isna(products.loc["A2", c.NEXT_DELIVERY]), "no delivery on the way: empty"
