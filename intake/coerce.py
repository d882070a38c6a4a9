"""Turning columns of text (or loosely typed Parquet) into canonical types, row by row.

A value that cannot be read does not stop an import and is never dropped in silence: its
row is rejected into the import report with the source row number, the column, the value
and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from intake.schemas import ColumnSpec, TableSchema

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})

# Formats tried in order for timestamps; the first that reads a value wins for that value.
TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")

OFFSET_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"

REPORT_COLUMNS = ["file", "source_row", "column", "value", "reason", "action"]


@dataclass(frozen=True)
class Parsed:
    """A parsed column and, for every value that could not be read, why."""

    values: pd.Series
    invalid: np.ndarray
    reasons: pd.Series


def _blank(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_string_dtype(series) or series.dtype == object:
        text = series.astype("str").str.strip()
        return (series.isna() | (text == "") | text.str.lower().isin(["nan", "none", "null"])).to_numpy()
    return series.isna().to_numpy()


def _no_problems(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    return np.zeros(len(series), bool), pd.Series("", index=series.index, dtype="str")


def _reasons(series: pd.Series, invalid: np.ndarray, template: str) -> pd.Series:
    reasons = pd.Series("", index=series.index, dtype="str")
    if invalid.any():
        shown = series[invalid].astype("str").str.slice(0, 40)
        reasons[invalid] = [template.format(value=value) for value in shown]
    return reasons


def parse_text(series: pd.Series) -> Parsed:
    blank = _blank(series)
    values = series.astype("str").str.strip().where(~blank, None)
    return Parsed(values.astype("str"), *_no_problems(series))


def parse_number(series: pd.Series, *, integer: bool) -> Parsed:
    blank = _blank(series)
    numbers = pd.to_numeric(series.where(~blank), errors="coerce").astype("float64")
    unreadable = ~blank & (numbers.isna().to_numpy() | ~np.isfinite(numbers.to_numpy()))
    if integer:
        fractional = ~blank & ~unreadable & (np.floor(numbers.fillna(0)) != numbers.fillna(0)).to_numpy()
        invalid = unreadable | fractional
        values = numbers.where(~invalid).round().astype("Int64")
        template = "'{value}' is not a whole number"
    else:
        invalid = unreadable
        values = numbers.where(~invalid)
        template = "'{value}' is not a number"
    return Parsed(values, invalid, _reasons(series, invalid, template))


def parse_bool(series: pd.Series) -> Parsed:
    blank = _blank(series)
    if pd.api.types.is_bool_dtype(series):
        return Parsed(series.astype("boolean"), *_no_problems(series))
    text = series.astype("str").str.strip().str.lower()
    is_true = text.isin(TRUE_WORDS).to_numpy()
    is_false = text.isin(FALSE_WORDS).to_numpy()
    invalid = ~blank & ~is_true & ~is_false
    values = pd.Series(pd.NA, index=series.index, dtype="boolean")
    values[is_true] = True
    values[is_false] = False
    return Parsed(values, invalid, _reasons(series, invalid, "'{value}' is not true/false"))


def parse_timestamp(series: pd.Series, tz: ZoneInfo) -> Parsed:
    """Read timestamps; naive ones are local shop time, aware ones are converted to it."""
    blank = _blank(series)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        values = series.dt.tz_convert(tz)
        return Parsed(values, *_no_problems(series))
    if pd.api.types.is_datetime64_dtype(series):
        values = _localize(series, tz)
        return Parsed(values, *_no_problems(series))
    text = series.astype("str").str.strip()
    parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[us]")
    todo = ~blank
    for fmt in TIMESTAMP_FORMATS:
        if not todo.any():
            break
        attempt = pd.to_datetime(text[todo], errors="coerce", format=fmt)
        parsed[todo] = attempt
        todo = todo & parsed.isna().to_numpy()
    aware = pd.Series(pd.NaT, index=series.index, dtype=f"datetime64[us, {tz.key}]")
    if todo.any():
        # ISO 8601, with an offset ('2024-01-05T10:00:00+08:00') or without, or a date alone
        has_offset = todo & text.str.contains(OFFSET_SUFFIX, regex=True, na=False).to_numpy()
        if has_offset.any():
            aware[has_offset] = pd.to_datetime(
                text[has_offset], errors="coerce", format="ISO8601", utc=True
            ).dt.tz_convert(tz)
        naive = todo & ~has_offset
        if naive.any():
            parsed[naive] = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        todo = todo & parsed.isna().to_numpy() & aware.isna().to_numpy()
    values = _localize(parsed, tz)
    values = values.where(aware.isna(), aware)
    invalid = todo.copy()
    return Parsed(values, invalid, _reasons(series, invalid, "'{value}' is not a date and time"))


def parse_date(series: pd.Series, tz: ZoneInfo) -> Parsed:
    stamps = parse_timestamp(series, tz)
    values = stamps.values.dt.tz_localize(None).dt.normalize()
    return Parsed(values, stamps.invalid, stamps.reasons.str.replace("date and time", "date"))


def _localize(naive: pd.Series, tz: ZoneInfo) -> pd.Series:
    # Shop clocks repeat an hour in autumn and skip one in spring: keep every row,
    # reading a repeated time as the first (summer) one and a skipped time as the next.
    return naive.dt.tz_localize(tz, ambiguous=np.ones(len(naive), bool), nonexistent="shift_forward")


def parse_column(series: pd.Series, spec: ColumnSpec, tz: ZoneInfo) -> Parsed:
    if spec.kind == "str":
        parsed = parse_text(series)
    elif spec.kind == "int":
        parsed = parse_number(series, integer=True)
    elif spec.kind == "float":
        parsed = parse_number(series, integer=False)
    elif spec.kind == "bool":
        parsed = parse_bool(series)
    elif spec.kind == "timestamp":
        parsed = parse_timestamp(series, tz)
    else:
        parsed = parse_date(series, tz)
    return _apply_rules(series, parsed, spec)


def _apply_rules(raw: pd.Series, parsed: Parsed, spec: ColumnSpec) -> Parsed:
    invalid = parsed.invalid.copy()
    reasons = parsed.reasons.copy()

    def flag(mask: np.ndarray, reason: str) -> None:
        new = mask & ~invalid
        if new.any():
            shown = raw[new].astype("str").str.slice(0, 40)
            reasons[new] = [reason.format(value=value) for value in shown]
            invalid[new] = True

    missing = parsed.values.isna().to_numpy() & ~invalid
    if not spec.nullable:
        flag(missing, "missing value")
    if spec.minimum is not None:
        numbers = parsed.values.astype("float64").to_numpy(na_value=np.nan)
        with np.errstate(invalid="ignore"):
            below = numbers < spec.minimum if spec.minimum_inclusive else numbers <= spec.minimum
        bound = "at least" if spec.minimum_inclusive else "more than"
        flag(below & ~missing, f"'{{value}}' must be {bound} {spec.minimum:g}")
    if spec.allowed is not None:
        outside = ~parsed.values.isin(spec.allowed).to_numpy() & ~missing
        flag(outside, f"'{{value}}' is not one of {', '.join(spec.allowed)}")
    return Parsed(parsed.values, invalid, reasons)


def coerce_table(
    raw: pd.DataFrame, schema: TableSchema, tz: ZoneInfo, source_rows: np.ndarray, file: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coerce every column of `raw` to `schema`; return the valid rows (indexed by their
    source row) and a report of the rejected ones (one line per bad value, so a row with
    two problems shows both)."""
    out: dict[str, pd.Series] = {}
    problems: list[pd.DataFrame] = []
    bad_rows = np.zeros(len(raw), bool)
    for spec in schema.columns:
        if spec.name not in raw.columns and spec.optional:
            continue
        if spec.name not in raw.columns:
            if spec.nullable:
                out[spec.name] = pd.Series(pd.NA, index=raw.index)
                parsed = parse_column(out[spec.name], spec, tz)
                out[spec.name] = parsed.values
                continue
            raise KeyError(spec.name)
        parsed = parse_column(raw[spec.name], spec, tz)
        out[spec.name] = parsed.values
        if parsed.invalid.any():
            bad_rows |= parsed.invalid
            problems.append(
                pd.DataFrame(
                    {
                        "file": file,
                        "source_row": source_rows[parsed.invalid],
                        "column": spec.name,
                        "value": raw[spec.name][parsed.invalid].astype("str").to_numpy(),
                        "reason": parsed.reasons[parsed.invalid].to_numpy(),
                        "action": "rejected",
                    }
                )
            )
    table = pd.DataFrame(out)[~bad_rows]
    table.index = pd.Index(source_rows[~bad_rows], name="source_row")
    report = pd.concat(problems, ignore_index=True) if problems else empty_report()
    return to_canonical_dtypes(table, schema), report.sort_values(["source_row", "column"], kind="stable")


def empty_report() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in REPORT_COLUMNS})


def to_canonical_dtypes(table: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """One storage type per kind, so Parquet files written by any importer look the same."""
    out = table.copy()
    present = [spec for spec in schema.columns if not (spec.optional and spec.name not in out)]
    for spec in present:
        column = out[spec.name]
        if spec.kind == "str":
            out[spec.name] = column.astype("str").where(column.notna(), None).astype("str")
        elif spec.kind == "int":
            out[spec.name] = column.astype("Int64" if spec.nullable else "int64")
        elif spec.kind == "float":
            out[spec.name] = column.astype("float64")
        elif spec.kind == "bool":
            out[spec.name] = column.astype("boolean" if spec.nullable else "bool")
        elif spec.kind == "date":
            out[spec.name] = pd.to_datetime(column).astype("datetime64[us]")
    return out[[spec.name for spec in present]]
