"""What every importer shares: reading a file, the import report, deriving the tables
an export does not carry, and writing the result in one step.

The report has one line per row that was rejected, set aside, reported as a duplicate
or altered on the way in (a cancellation turned into a return, a line without a customer
kept as a guest order); the summary counts add up to the rows read, so nothing vanishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from intake.coerce import REPORT_COLUMNS, empty_report, to_canonical_dtypes
from intake.importers.consent import Consent
from intake.schemas import SCHEMAS
from intake.tables import staged_shop, write_tables
from storewise import columns as c
from storewise.errors import DataError
from storewise.shop import ShopPaths, ShopSettings, write_shop_settings


class Action(StrEnum):
    REJECTED = "rejected"  # a value could not be read: the row is not imported
    SET_ASIDE = "set_aside"  # readable, but not a product sale (postage, fees, adjustments)
    DUPLICATE = "duplicate"  # an exact copy of an earlier row
    RETURN = "return"  # a cancellation, imported as a return
    GUEST = "guest"  # a sale without a customer, imported as a guest order


@dataclass
class ImportResult:
    tables: dict[str, pd.DataFrame]
    report: pd.DataFrame
    summary: dict[str, object]
    settings: ShopSettings
    notes: list[str] = field(default_factory=list)


def read_any(path: Path, *, what: str = "file") -> pd.DataFrame:
    """Read CSV (plain or gzipped), XLSX or Parquet as text columns, or fail with one
    clear message naming the file."""
    if not path.exists():
        raise DataError(f"{what} not found", path=path)
    if path.is_dir():
        raise DataError(f"expected a {what}, found a directory", path=path)
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes[-1:] == [".parquet"]:
            frame = pd.read_parquet(path)
        elif suffixes[-1:] in ([".xlsx"], [".xlsm"], [".xls"]):
            frame = pd.read_excel(path, dtype=str, keep_default_na=False)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", path=path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, EOFError) as error:
        raise DataError(f"cannot read as {_format_name(suffixes)}: {_first_line(error)}", path=path) from None
    except Exception as error:  # openpyxl and pyarrow raise their own types for a corrupt file
        raise DataError(f"cannot read as {_format_name(suffixes)}: {_first_line(error)}", path=path) from None
    if frame.empty:
        raise DataError("file has a header but no data rows", path=path)
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame


def _format_name(suffixes: list[str]) -> str:
    if suffixes[-1:] == [".parquet"]:
        return "Parquet"
    if suffixes[-1:] in ([".xlsx"], [".xlsm"], [".xls"]):
        return "an Excel workbook"
    return "CSV"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def source_rows(frame: pd.DataFrame) -> np.ndarray:
    """The line of each data row in its file, the header being line 1 (as a spreadsheet
    numbers rows), so a person can find it."""
    return np.arange(2, len(frame) + 2)


def report_lines(
    file: str,
    rows: np.ndarray,
    column: str,
    values: pd.Series | np.ndarray,
    reason: str | pd.Series | list[str],
    action: Action,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": file,
            "source_row": rows,
            "column": column,
            "value": np.asarray(values, dtype=object),
            "reason": reason if isinstance(reason, str) else np.asarray(reason),
            "action": action.value,
        }
    )[REPORT_COLUMNS]


def combine_reports(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty_report()
    return (
        pd.concat(parts, ignore_index=True)
        .sort_values(["file", "source_row", "action"], kind="stable")
        .reset_index(drop=True)
    )


def derive_customers(orders: pd.DataFrame, regions: pd.Series | None, consent: Consent) -> pd.DataFrame:
    """Customers from the order lines of an export that has no customer table: signed up
    at their first order, region as most often given, consent as the shop states."""
    known = orders[orders[c.CUSTOMER_ID].notna()]
    first = known.groupby(c.CUSTOMER_ID)[c.ORDERED_AT].min()
    customers = pd.DataFrame(
        {
            c.CUSTOMER_ID: first.index,
            c.SIGNUP_DATE: first.dt.tz_localize(None).dt.normalize().to_numpy(),
        }
    )
    if regions is not None:
        customers[c.REGION] = customers[c.CUSTOMER_ID].map(regions)
    else:
        customers[c.REGION] = None
    customers[c.IS_MEMBER] = False
    customers[c.MEMBER_SINCE] = pd.NaT
    customers[c.CONSENT_PERSONALIZATION] = consent in (Consent.PERSONALIZATION, Consent.ALL)
    customers[c.CONSENT_MARKETING] = consent == Consent.ALL
    return to_canonical_dtypes(customers, SCHEMAS[c.CUSTOMERS])


def write_import(shop: ShopPaths, result: ImportResult) -> None:
    """Replace the shop's raw tables, settings and import report in one step."""
    # the generator's true demand does not describe an imported shop
    with staged_shop(shop, stale=(shop.ground_truth,)) as staging:
        write_tables(staging, result.tables)
        write_shop_settings(staging, result.settings)
        result.report.to_csv(staging / shop.import_report.name, index=False)
        summary = {**result.summary, "notes": result.notes}
        (staging / shop.import_summary.name).write_text(
            json.dumps(summary, indent=2, default=str), encoding="utf-8"
        )
