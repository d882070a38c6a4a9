"""The one rule for customer ids, used by every import, the batch CLI, the service and erasure.

Exports written by spreadsheets or pandas turn a numeric id into a float: the online-retail
file writes customer 17850 as `17850.0`, others as `17850.00`. Those are one customer, so a
number with only zeros after the point loses them; every other id is kept as given (without
surrounding spaces). Applying it twice changes nothing.
"""

from __future__ import annotations

import re

import pandas as pd

FLOAT_ID = re.compile(r"^(\d+)\.0+$")


def normalize_customer_id(value: object) -> str:
    """'17850', '17850.0' and '17850.00' are customer '17850'; other ids are kept as given."""
    text = str(value).strip()
    match = FLOAT_ID.match(text)
    return match.group(1) if match else text


def normalize_customer_ids(ids: pd.Series) -> pd.Series:
    """`normalize_customer_id` over a column of text (missing values stay missing)."""
    return normalize_ids(ids)


def normalize_ids(ids: pd.Series) -> pd.Series:
    """The same rule for any id column a spreadsheet may have written as floats (stores,
    items): '9' and '9.0' are one store."""
    return ids.str.strip().str.replace(FLOAT_ID, r"\1", regex=True)
