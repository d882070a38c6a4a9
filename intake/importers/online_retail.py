"""Import of the classic "online retail" invoice export (UCI Online Retail I and II).

One row per invoice line: InvoiceNo/Invoice, StockCode, Description, Quantity,
InvoiceDate, UnitPrice/Price, CustomerID/Customer ID, Country. What each quirk becomes:

- a line on a cancellation invoice (`C…`): a return of that quantity;
- a line without a customer: a guest order (demand, never personalized);
- a negative quantity outside a cancellation: a stock adjustment, set aside;
- a zero quantity or a zero price (samples, free items, adjustments): set aside;
- a stock code that is not an item (postage, fees, manual lines, gift vouchers): set
  aside, with what it is (`DCGS…` codes are real marketplace products and are kept);
- an exact copy of an earlier line: reported as a duplicate, imported once;
- a value that cannot be read (a date, a number): rejected, with the column and value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from intake.coerce import Parsed, parse_number, parse_timestamp, to_canonical_dtypes
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
from storewise.ids import normalize_customer_ids
from storewise.shop import ShopSettings

# canonical name -> accepted spellings (compared without case, spaces or underscores)
COLUMN_ALIASES = {
    "invoice": ("invoiceno", "invoice", "invoicenumber"),
    "stock_code": ("stockcode",),
    "description": ("description",),
    "quantity": ("quantity",),
    "invoice_date": ("invoicedate",),
    "price": ("unitprice", "price"),
    "customer": ("customerid",),
    "country": ("country",),
}
OPTIONAL_COLUMNS = {"description", "country"}

# Stock codes that are charges, fees or adjustments rather than items.
SERVICE_CODES = {
    "POST": "postage",
    "DOT": "postage (dotcom)",
    "C2": "carriage",
    "M": "manual adjustment",
    "D": "discount",
    "S": "samples",
    "B": "bad debt adjustment",
    "BANK CHARGES": "bank charges",
    "AMAZONFEE": "marketplace fee",
    "CRUK": "charity commission",
    "ADJUST": "manual adjustment",
    "ADJUST2": "manual adjustment",
    "TEST001": "test line",
    "TEST002": "test line",
}
PRODUCT_CODE = re.compile(r"^(\d{5}[A-Z0-9]{0,3}|DCGS[A-Z0-9]*)$")
GIFT_VOUCHER = re.compile(r"^GIFT_\d+_\d+$")

# Words of a description that say what kind of thing an item is (the head noun is
# usually near the end, so descriptions are read from the last word backwards).
CATEGORY_WORDS = {
    "bag": "bags",
    "purse": "bags",
    "tote": "bags",
    "backpack": "bags",
    "box": "boxes",
    "case": "boxes",
    "tin": "boxes",
    "basket": "boxes",
    "crate": "boxes",
    "candle": "candles & lights",
    "t-light": "candles & lights",
    "light": "candles & lights",
    "lantern": "candles & lights",
    "lamp": "candles & lights",
    "holder": "candles & lights",
    "mug": "kitchen & tableware",
    "cup": "kitchen & tableware",
    "bowl": "kitchen & tableware",
    "plate": "kitchen & tableware",
    "dish": "kitchen & tableware",
    "tray": "kitchen & tableware",
    "jar": "kitchen & tableware",
    "bottle": "kitchen & tableware",
    "teapot": "kitchen & tableware",
    "cutlery": "kitchen & tableware",
    "napkin": "kitchen & tableware",
    "apron": "kitchen & tableware",
    "mould": "kitchen & tableware",
    "doily": "kitchen & tableware",
    "doilies": "kitchen & tableware",
    "sign": "home decor",
    "decoration": "home decor",
    "ornament": "home decor",
    "garland": "home decor",
    "bunting": "home decor",
    "frame": "home decor",
    "mirror": "home decor",
    "clock": "home decor",
    "cushion": "home decor",
    "cover": "home decor",
    "doormat": "home decor",
    "hook": "home decor",
    "hanger": "home decor",
    "wreath": "home decor",
    "tree": "home decor",
    "bell": "home decor",
    "card": "cards & wrap",
    "wrap": "cards & wrap",
    "tissue": "cards & wrap",
    "ribbon": "cards & wrap",
    "tag": "cards & wrap",
    "envelope": "cards & wrap",
    "sticker": "stationery",
    "notebook": "stationery",
    "pen": "stationery",
    "pencil": "stationery",
    "magnet": "stationery",
    "letter": "stationery",
    "calendar": "stationery",
    "book": "stationery",
    "bracelet": "jewellery",
    "necklace": "jewellery",
    "earring": "jewellery",
    "ring": "jewellery",
    "charm": "jewellery",
    "brooch": "jewellery",
    "hairclip": "jewellery",
    "hairband": "jewellery",
    "toy": "toys & games",
    "game": "toys & games",
    "doll": "toys & games",
    "jigsaw": "toys & games",
    "kit": "toys & games",
    "umbrella": "outdoor & garden",
    "garden": "outdoor & garden",
}
STOPWORDS = frozenset({"of", "set", "and", "the", "with", "in", "a", "for", "to", "on", "&", "+", "-"})


@dataclass
class Export:
    """An export as read: the raw frame, its values as stripped text under our names, the
    source row of each line, and the values that parse (quantity, price, time)."""

    path: Path
    raw: pd.DataFrame
    columns: dict[str, str]
    rows: np.ndarray
    text: pd.DataFrame
    quantity: Parsed
    price: Parsed
    when: Parsed

    def report(self, mask: np.ndarray, column: str, reason: object, action: Action) -> pd.DataFrame:
        """Report lines for the rows in `mask`, showing their value in `column` ("*": the invoice)."""
        source = self.columns["invoice"] if column == "*" else self.columns[column]
        return report_lines(
            self.path.name,
            self.rows[mask],
            source if column != "*" else "*",
            self.raw.loc[mask, source],
            reason[mask] if isinstance(reason, pd.Series | list | np.ndarray) else reason,
            action,
        )


def read_export(path: Path, tz: ZoneInfo) -> Export:
    raw = read_any(path)
    columns = _match_columns(raw, path)
    text = pd.DataFrame({name: raw[source].astype("str").str.strip() for name, source in columns.items()})
    for name in OPTIONAL_COLUMNS - set(columns):
        text[name] = ""
    text["stock_code"] = text["stock_code"].str.upper()
    return Export(
        path,
        raw,
        columns,
        source_rows(raw),
        text,
        parse_number(text["quantity"], integer=True),
        parse_number(text["price"], integer=False),
        parse_timestamp(text["invoice_date"], tz),
    )


def unreadable(export: Export) -> tuple[np.ndarray, list[pd.DataFrame]]:
    """Lines whose quantity, price or date cannot be read, with no invoice or stock code, or
    with a negative price: rejected, each with its column and reason."""
    problems = []
    rejected = np.zeros(len(export.raw), bool)
    for name, parsed in (
        ("quantity", export.quantity),
        ("price", export.price),
        ("invoice_date", export.when),
    ):
        bad = parsed.invalid | parsed.values.isna().to_numpy()
        problems.append(
            export.report(
                bad, name, parsed.reasons.where(parsed.reasons != "", "missing value"), Action.REJECTED
            )
        )
        rejected |= bad
    for name in ("invoice", "stock_code"):
        missing = (export.text[name] == "").to_numpy() & ~rejected
        problems.append(export.report(missing, name, "missing value", Action.REJECTED))
        rejected |= missing
    negative_price = ~rejected & (export.price.values.fillna(0).to_numpy() < 0)
    reason = "negative price (an accounting adjustment, not a sale)"
    problems.append(export.report(negative_price, "price", reason, Action.REJECTED))
    return rejected | negative_price, problems


def duplicates(export: Export, rejected: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Exact copies of an earlier line: imported once, the copies reported."""
    raw = export.raw
    duplicate = raw.duplicated(keep="first").to_numpy() & ~rejected
    copies = raw.groupby(list(raw.columns), sort=False, dropna=False).ngroup().to_numpy()
    first_row = pd.Series(export.rows).groupby(copies).transform("min").to_numpy()
    reasons = np.array([f"exact copy of row {r}" for r in first_row], dtype=object)
    return duplicate, export.report(duplicate, "*", reasons, Action.DUPLICATE)


def set_aside_reasons(export: Export) -> pd.Series:
    """Why a line is not a product sale ('' when it is one): postage, fees, vouchers, stock
    adjustments, zero quantities and zero prices."""
    code = export.text["stock_code"]
    qty = export.quantity.values.fillna(0).astype("int64").to_numpy()
    unit_price = export.price.values.fillna(0).to_numpy()
    cancellation = export.text["invoice"].str.upper().str.startswith("C").to_numpy()
    service = code.map(SERVICE_CODES)
    not_product = ~code.str.match(PRODUCT_CODE).to_numpy()
    reason = pd.Series("", index=export.raw.index, dtype="str")
    reason[not_product] = "not a product: " + service[not_product].fillna("non-item stock code")
    reason[code.str.match(GIFT_VOUCHER).to_numpy()] = "not a product: gift voucher"
    reason[(reason == "") & (qty < 0) & ~cancellation] = (
        "stock adjustment: negative quantity outside a cancellation"
    )
    reason[(reason == "") & (qty == 0)] = "zero quantity"
    reason[(reason == "") & (unit_price == 0)] = "zero price (sample, free item or adjustment)"
    return reason


@dataclass
class Kept:
    """The lines imported: sales and returns as canonical orders, and which were which."""

    orders: pd.DataFrame
    returns: np.ndarray
    guest_sales: np.ndarray
    problems: list[pd.DataFrame]


def kept_orders(export: Export, kept: np.ndarray) -> Kept:
    text = export.text
    customer = normalize_customer_ids(text["customer"])
    cancellation = text["invoice"].str.upper().str.startswith("C").to_numpy()
    is_return = kept & cancellation
    guest_sale = kept & (customer == "").to_numpy() & ~is_return
    problems = [
        export.report(is_return, "quantity", "cancellation imported as a return", Action.RETURN),
        export.report(guest_sale, "customer", "no customer: imported as a guest order", Action.GUEST),
    ]
    orders = pd.DataFrame(
        {
            c.ORDER_ID: text["invoice"][kept].str.upper().to_numpy(),
            c.CUSTOMER_ID: customer[kept].where(customer[kept] != "", None).to_numpy(),
            c.ITEM_ID: text["stock_code"][kept].to_numpy(),
            c.QUANTITY: np.abs(export.quantity.values.fillna(0).astype("int64").to_numpy()[kept]),
            c.UNIT_PRICE: export.price.values.fillna(0).to_numpy()[kept],
            c.ORDERED_AT: export.when.values[kept].to_numpy(),
            c.RETURNED: cancellation[kept],
        }
    )
    orders = to_canonical_dtypes(orders, SCHEMAS[c.ORDERS])
    if orders.empty:
        raise DataError(
            "no product sales or returns left after the checks; see the reasons above", path=export.path
        )
    return Kept(orders, is_return, guest_sale, problems)


def customer_regions(orders: pd.DataFrame, countries: np.ndarray) -> pd.Series:
    """Each customer's most frequent country."""
    return (
        pd.DataFrame({c.CUSTOMER_ID: orders[c.CUSTOMER_ID], "country": countries})
        .dropna(subset=[c.CUSTOMER_ID])
        .query("country != ''")
        .groupby(c.CUSTOMER_ID)["country"]
        .agg(lambda values: values.mode().iloc[0])
    )


def consent_notes(consent: Consent) -> list[str]:
    return [
        "Online-retail exports carry no consent: "
        + (
            "customers are assumed to have agreed to personalization (not to marketing); "
            "pass --consent none if they have not."
            if consent == Consent.PERSONALIZATION
            else f"consent assumed: {consent.value}."
        ),
        "Unit costs and stock are not in the export: pricing uses the configured default margin, "
        "and stock-outs cannot be seen.",
    ]


def import_online_retail(
    path: Path, *, consent: Consent, timezone: str = "Europe/London", currency: str = "GBP"
) -> ImportResult:
    """An invoice export as canonical tables; every line not imported as a plain sale is a
    line of the report, and the counts add up to the lines read."""
    export = read_export(path, ZoneInfo(timezone))
    rejected, problems = unreadable(export)
    duplicate, copies = duplicates(export, rejected)
    reasons = set_aside_reasons(export)
    live = ~rejected & ~duplicate
    set_aside = live & (reasons != "").to_numpy()
    problems += [copies, export.report(set_aside, "stock_code", reasons, Action.SET_ASIDE)]
    kept = kept_orders(export, live & ~set_aside)
    orders = kept.orders
    descriptions = export.text["description"][live & ~set_aside].to_numpy()
    products = derive_products(orders, descriptions)
    countries = export.text["country"][live & ~set_aside].to_numpy()
    customers = derive_customers(orders, customer_regions(orders, countries), consent)
    sales = len(orders) - int(kept.returns.sum())
    counts = {
        "rows read": len(export.raw),
        "sales imported (customers)": sales - int(kept.guest_sales.sum()),
        "sales imported (guests)": int(kept.guest_sales.sum()),
        "returns imported": int(kept.returns.sum()),
        "set aside": int(set_aside.sum()),
        "duplicates": int(duplicate.sum()),
        "rejected": int(rejected.sum()),
    }
    accounted = sum(counts.values()) - counts["rows read"]
    assert accounted == len(export.raw), (
        f"import lost rows: {accounted} accounted for, {len(export.raw)} read"
    )
    summary: dict[str, object] = {
        "source": str(path),
        "format": "online-retail",
        **counts,
        "set aside by reason": reasons[set_aside].value_counts().to_dict(),
        "items": len(products),
        "items with several descriptions": int(_several_descriptions(orders, descriptions)),
        "customers": len(customers),
        "consent assumed": consent.value,
    }
    settings = ShopSettings(
        name=path.name.split(".")[0], currency=currency, timezone=timezone, source="online-retail"
    )
    tables = {c.CUSTOMERS: customers, c.PRODUCTS: products, c.ORDERS: orders}
    return ImportResult(
        tables, combine_reports(problems + kept.problems), summary, settings, consent_notes(consent)
    )


def _match_columns(raw: pd.DataFrame, path: Path) -> dict[str, str]:
    def key(name: str) -> str:
        return re.sub(r"[\s_]+", "", name.lower())

    by_key = {key(name): name for name in raw.columns}
    found = {}
    for canonical, spellings in COLUMN_ALIASES.items():
        match = next((by_key[s] for s in spellings if s in by_key), None)
        if match is None and canonical not in OPTIONAL_COLUMNS:
            expected = " or ".join(f"'{s}'" for s in _display(canonical))
            raise DataError(
                f"missing column {expected}; the file has {', '.join(map(repr, raw.columns))}",
                path=path,
                column=_display(canonical)[0],
            )
        if match is not None:
            found[canonical] = match
    return found


def _display(canonical: str) -> tuple[str, ...]:
    return {
        "invoice": ("InvoiceNo", "Invoice"),
        "stock_code": ("StockCode",),
        "description": ("Description",),
        "quantity": ("Quantity",),
        "invoice_date": ("InvoiceDate",),
        "price": ("UnitPrice", "Price"),
        "customer": ("CustomerID", "Customer ID"),
        "country": ("Country",),
    }[canonical]


def derive_products(orders: pd.DataFrame, descriptions: np.ndarray) -> pd.DataFrame:
    """Products from the lines: the name most used for the code (the latest on a tie),
    a category read from the name, the name's words as tags, and the price most often
    charged as list price. Cost and stock are unknown in an invoice export."""
    lines = pd.DataFrame(
        {
            c.ITEM_ID: orders[c.ITEM_ID].to_numpy(),
            "description": descriptions,
            c.UNIT_PRICE: orders[c.UNIT_PRICE].to_numpy(),
            c.ORDERED_AT: orders[c.ORDERED_AT].to_numpy(),
            "sale": ~orders[c.RETURNED].to_numpy(),
        }
    )
    named = lines[lines["description"] != ""]
    name_counts = named.groupby([c.ITEM_ID, "description"]).agg(
        n=(c.ORDERED_AT, "size"), last=(c.ORDERED_AT, "max")
    )
    best_name = (
        name_counts.sort_values(["n", "last"])
        .groupby(level=0)
        .tail(1)
        .reset_index()
        .set_index(c.ITEM_ID)["description"]
    )
    priced = lines[lines["sale"]] if lines["sale"].any() else lines
    price_counts = priced.groupby([c.ITEM_ID, c.UNIT_PRICE]).size().rename("n").reset_index()
    modal_price = (
        price_counts.sort_values(["n", c.UNIT_PRICE])
        .groupby(c.ITEM_ID)
        .tail(1)
        .set_index(c.ITEM_ID)[c.UNIT_PRICE]
    )
    fallback_price = lines.groupby(c.ITEM_ID)[c.UNIT_PRICE].median()
    items = pd.Index(sorted(lines[c.ITEM_ID].unique()), name=c.ITEM_ID)
    names = best_name.reindex(items)
    names = names.where(names.notna(), pd.Series(items, index=items))
    products = pd.DataFrame(
        {
            c.ITEM_ID: items,
            c.NAME: names.to_numpy(),
            c.CATEGORY: [category_of(name) for name in names],
            c.TAGS: [c.TAG_SEPARATOR.join(words_of(name)) for name in names],
            c.LIST_PRICE: modal_price.reindex(items).fillna(fallback_price.reindex(items)).to_numpy(),
            c.UNIT_COST: np.nan,
            c.STOCK: pd.array([pd.NA] * len(items), dtype="Int64"),
        }
    )
    return to_canonical_dtypes(products, SCHEMAS[c.PRODUCTS])


def words_of(name: str) -> list[str]:
    words = re.findall(r"[a-z][a-z'\-]*", str(name).lower())
    return [word for word in words if word not in STOPWORDS and len(word) > 1]


def category_of(name: str) -> str:
    for word in reversed(words_of(name)):
        for candidate in (word, word.rstrip("s"), word[:-2] if word.endswith("es") else word):
            if candidate in CATEGORY_WORDS:
                return CATEGORY_WORDS[candidate]
    return "other"


def _several_descriptions(orders: pd.DataFrame, descriptions: np.ndarray) -> int:
    frame = pd.DataFrame({c.ITEM_ID: orders[c.ITEM_ID].to_numpy(), "d": descriptions})
    frame = frame[frame["d"] != ""]
    return int((frame.groupby(c.ITEM_ID)["d"].nunique() > 1).sum())
