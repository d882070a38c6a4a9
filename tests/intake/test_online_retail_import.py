"""Import of online-retail invoice exports: the real sample, and every quirk by hand."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intake.check import check_tables
from intake.importers.common import Consent, ImportResult
from intake.importers.online_retail import category_of, import_online_retail
from storewise import columns as c
from storewise.errors import DataError

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
# Each line is one quirk; the comment is what must become of it.
HAND_MADE = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",  # sale
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",  # sale
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",  # duplicate of row 3
    "C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-02 09:41:00,2.55,17850.0,United Kingdom",  # return
    "536380,22139,,-10,2010-12-02 10:00:00,0,,United Kingdom",  # stock adjustment
    "536381,POST,POSTAGE,1,2010-12-02 10:05:00,18.00,12583.0,France",  # not a product
    "536382,22633,HAND WARMER UNION JACK,12,2010-12-02 11:00:00,2.10,,United Kingdom",  # guest sale
    "536383,22632,HAND WARMER RED POLKA DOT,3,2010-12-02 11:05:00,0,12583.0,France",  # zero price
    "536384,22632,HAND WARMER RED POLKA DOT,3,not a date,1.85,12583.0,France",  # rejected: date
    "536385,22632,HAND WARMER RED POLKA DOT,three,2010-12-02 11:10:00,1.85,12583.0,France",  # rejected: quantity
    "536386,gift_0001_20,Dotcomgiftshop Gift Voucher £20.00,1,2010-12-03 12:00:00,17.02,,United Kingdom",  # voucher
    "536387,DCGS0076,SUNJAR LED NIGHT NIGHT LIGHT,1,2010-12-03 12:30:00,16.13,,United Kingdom",  # marketplace item
    "A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,-11062.06,,United Kingdom",  # rejected: negative price
]


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sample_import(online_retail_sample: Path) -> ImportResult:
    return import_online_retail(online_retail_sample, consent=Consent.PERSONALIZATION)


@pytest.fixture(scope="module")
def sample_raw(online_retail_sample: Path) -> pd.DataFrame:
    return pd.read_csv(online_retail_sample, dtype=str, keep_default_na=False)


def test_every_row_of_the_sample_is_accounted_for(
    sample_import: ImportResult, sample_raw: pd.DataFrame
) -> None:
    s = {key: value for key, value in sample_import.summary.items() if isinstance(value, int)}
    assert s["rows read"] == len(sample_raw) == 110_560
    parts = [
        "sales imported (customers)",
        "sales imported (guests)",
        "returns imported",
        "set aside",
        "duplicates",
        "rejected",
    ]
    assert sum(s[part] for part in parts) == 110_560
    assert (
        len(sample_import.tables[c.ORDERS])
        == s["sales imported (customers)"] + s["sales imported (guests)"] + s["returns imported"]
    )
    # every row not imported as a plain customer sale has exactly one line in the report
    report = sample_import.report
    assert report["source_row"].is_unique
    assert len(report) == 110_560 - s["sales imported (customers)"]


def test_sample_quirks_match_the_counts_in_the_data_readme(
    sample_import: ImportResult, sample_raw: pd.DataFrame
) -> None:
    report = sample_import.report.set_index("source_row")
    raw = sample_raw.set_index(np.arange(2, len(sample_raw) + 2))
    assert (report["action"] == "duplicate").sum() == 1_144
    adjustments = report["reason"] == "stock adjustment: negative quantity outside a cancellation"
    assert adjustments.sum() == 278
    # cancellations: 1,959 lines, each a return or, if a fee, duplicate or free line, set aside
    cancelled = raw.index[raw["InvoiceNo"].str.startswith("C")]
    assert len(cancelled) == 1_959
    assert report.loc[cancelled, "action"].isin(["return", "set_aside", "duplicate"]).all()
    assert (report["action"] == "return").sum() == sample_import.summary["returns imported"]
    # guests: 22,929 lines without a customer; each a guest order or in the report for another reason
    guests = raw.index[raw["CustomerID"] == ""]
    assert len(guests) == 22_929
    assert report.loc[guests, "action"].isin(["guest", "set_aside", "duplicate", "return"]).all()
    # non-products: 617 lines by the README, of which 8 DCGS marketplace lines are real products
    codes = raw["StockCode"].str.upper()
    non_item = ~codes.str.match(r"^\d{5}")
    dcgs = codes.str.startswith("DCGS")
    assert non_item.sum() == 617
    assert dcgs.sum() == 8
    service = raw.index[non_item & ~dcgs]
    assert report.loc[service, "action"].isin(["set_aside", "duplicate"]).all()
    assert report.loc[service, "reason"].str.startswith(("not a product", "exact copy")).all()
    dcgs_sales = dcgs & (raw["Quantity"].astype(int) > 0) & (raw["UnitPrice"].astype(float) > 0)
    assert dcgs_sales.sum() == 4
    assert set(raw.loc[dcgs_sales, "StockCode"]) <= set(sample_import.tables[c.PRODUCTS][c.ITEM_ID])
    assert report.loc[raw.index[dcgs & ~dcgs_sales], "reason"].str.startswith("stock adjustment").all()


def test_sample_import_gives_valid_canonical_tables(sample_import: ImportResult) -> None:
    report = check_tables(sample_import.tables, sample_import.settings.tz)
    assert report.ok, [str(p) for p in report.errors]
    orders = sample_import.tables[c.ORDERS]
    assert orders[c.CUSTOMER_ID].dropna().str.fullmatch(r"\d+").all(), "17850.0 is read as customer 17850"
    assert "17850" in set(orders[c.CUSTOMER_ID])
    assert (orders[c.QUANTITY] > 0).all()
    assert str(orders[c.ORDERED_AT].dt.tz) == "Europe/London"
    customers = sample_import.tables[c.CUSTOMERS].set_index(c.CUSTOMER_ID)
    assert customers.loc["17850", c.REGION] == "United Kingdom"
    assert customers[c.CONSENT_PERSONALIZATION].all()
    assert not customers[c.CONSENT_MARKETING].any()
    assert sample_import.settings.currency == "GBP"


def test_hand_made_quirks_each_end_where_they_should(tmp_path: Path) -> None:
    result = import_online_retail(write_csv(tmp_path / "shop.csv", HAND_MADE), consent=Consent.NONE)
    actions = result.report.set_index("source_row")["action"].to_dict()
    assert actions == {
        4: "duplicate",
        5: "return",
        6: "set_aside",
        7: "set_aside",
        8: "guest",
        9: "set_aside",
        10: "rejected",
        11: "rejected",
        12: "set_aside",
        13: "guest",
        14: "rejected",
    }
    reasons = result.report.set_index("source_row")["reason"]
    assert reasons[4] == "exact copy of row 3"
    assert reasons[7] == "not a product: postage"
    assert reasons[9] == "zero price (sample, free item or adjustment)"
    assert reasons[10] == "'not a date' is not a date and time"
    assert reasons[11] == "'three' is not a whole number"
    assert reasons[12] == "not a product: gift voucher"
    assert reasons[14] == "negative price (an accounting adjustment, not a sale)"
    assert result.report.set_index("source_row").loc[10, "column"] == "InvoiceDate"
    orders = result.tables[c.ORDERS]
    returned = orders[orders[c.RETURNED]]
    assert returned[[c.ORDER_ID, c.ITEM_ID, c.QUANTITY]].values.tolist() == [["C536379", "85123A", 2]]
    assert orders[c.CUSTOMER_ID].isna().sum() == 2  # the hand warmer and the marketplace light
    assert not result.tables[c.CUSTOMERS][c.CONSENT_PERSONALIZATION].any()
    products = result.tables[c.PRODUCTS].set_index(c.ITEM_ID)
    assert products.loc["85123A", c.CATEGORY] == "candles & lights"
    assert products.loc["85123A", c.LIST_PRICE] == 2.55
    assert products[c.UNIT_COST].isna().all()


def test_online_retail_ii_spelling_is_read(tmp_path: Path) -> None:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    path = write_csv(tmp_path / "ii.csv", HAND_MADE[:2], header=header)
    result = import_online_retail(path, consent=Consent.PERSONALIZATION)
    assert len(result.tables[c.ORDERS]) == 2
    assert set(result.tables[c.ORDERS][c.CUSTOMER_ID]) == {"17850"}


def test_xlsx_with_us_dates_is_read(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        [
            [
                "536365",
                "85123A",
                "WHITE HANGING HEART T-LIGHT HOLDER",
                6,
                "12/1/2010 8:26",
                2.55,
                17850.0,
                "United Kingdom",
            ]
        ],
        columns=HEADER.split(","),
    )
    path = tmp_path / "Online Retail.xlsx"
    frame.to_excel(path, index=False)
    result = import_online_retail(path, consent=Consent.PERSONALIZATION)
    ordered_at = result.tables[c.ORDERS][c.ORDERED_AT].iloc[0]
    assert ordered_at == pd.Timestamp("2010-12-01 08:26", tz="Europe/London")
    assert result.tables[c.ORDERS][c.CUSTOMER_ID].iloc[0] == "17850"


def test_gzipped_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "export.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join([HEADER, *HAND_MADE[:2]]) + "\n")
    assert len(import_online_retail(path, consent=Consent.NONE).tables[c.ORDERS]) == 2


def test_missing_column_names_the_file_and_the_column(tmp_path: Path) -> None:
    header = HEADER.replace("StockCode,", "")
    lines = [",".join(line.split(",")[:1] + line.split(",")[2:]) for line in HAND_MADE[:1]]
    path = write_csv(tmp_path / "no_code.csv", lines, header=header)
    with pytest.raises(DataError) as caught:
        import_online_retail(path, consent=Consent.NONE)
    assert caught.value.message.startswith(
        f"{path}, column 'StockCode': missing column 'StockCode'; the file has"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (HEADER.encode() + b"\n", "file has a header but no data rows"),
    ],
)
def test_empty_files_are_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        import_online_retail(path, consent=Consent.NONE)
    assert caught.value.message == f"{path}: {message}"


def test_corrupt_gzip_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00this is not gzip data at all")
    with pytest.raises(DataError) as caught:
        import_online_retail(path, consent=Consent.NONE)
    assert caught.value.message.startswith(f"{path}: cannot read as CSV: ")


def test_a_file_of_only_bad_rows_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [HAND_MADE[8], HAND_MADE[9]])
    with pytest.raises(DataError, match="no product sales or returns left"):
        import_online_retail(path, consent=Consent.NONE)


@pytest.mark.parametrize(
    ("description", "category"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "candles & lights"),
        ("JUMBO BAG RED RETROSPOT", "bags"),
        ("SET OF 3 CAKE TINS PANTRY DESIGN", "boxes"),
        ("PINK DRAWER KNOB ACRYLIC EDWARDIAN", "other"),
    ],
)
def test_category_is_read_from_the_description(description: str, category: str) -> None:
    assert category_of(description) == category
