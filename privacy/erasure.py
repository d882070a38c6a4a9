"""`storewise erase CUSTOMER_ID`: remove a customer from the shop's data, features, logs and
reports, and from what the service answers.

- raw tables: the customer's row is deleted; their orders and events stay as a guest's
  (the sales and views are real demand, the person is gone);
- features are rebuilt without them, reports (which list customers) are deleted;
- the service's logs are rewritten without their lines;
- `<shop>/erasures.jsonl` gets a record with a salted hash of the id (never the id), which
  the service reads to stop personalizing for them at once; the next training no longer
  sees them. Older model versions in the MLflow store still hold the pseudonymous id until
  a retrained model is promoted and the old versions are deleted.
"""

from __future__ import annotations

import json
import shutil
import time

import pandas as pd

from features.pipeline import build_features
from intake.tables import read_tables, write_tables
from storewise import columns as c
from storewise.erasures import ERASURES, hashed, salt_of
from storewise.errors import DataError
from storewise.shop import ShopPaths


def erase_customer(shop: ShopPaths, customer_id: str) -> dict[str, int]:
    tables = read_tables(shop)
    customers, orders = tables[c.CUSTOMERS], tables[c.ORDERS]
    known = (customers[c.CUSTOMER_ID] == customer_id).any() or (orders[c.CUSTOMER_ID] == customer_id).any()
    if not known:
        raise DataError(f"unknown customer '{customer_id}' (nothing to erase)", path=shop.raw)
    counts = {"customers": int((customers[c.CUSTOMER_ID] == customer_id).sum())}
    tables[c.CUSTOMERS] = customers[customers[c.CUSTOMER_ID] != customer_id].reset_index(drop=True)
    for name in (c.ORDERS, c.EVENTS):
        if name in tables:
            table = tables[name]
            mine = table[c.CUSTOMER_ID] == customer_id
            counts[f"{name} anonymized"] = int(mine.sum())
            table[c.CUSTOMER_ID] = table[c.CUSTOMER_ID].where(~mine, None)
    write_tables(shop.root, tables)

    for log in sorted(shop.logs.glob("*.jsonl")) if shop.logs.exists() else []:
        kept, removed = [], 0
        for line in log.read_text(encoding="utf-8").splitlines():
            if line.strip() and json.loads(line).get("customer_id") == customer_id:
                removed += 1
            else:
                kept.append(line)
        log.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        counts[f"log {log.name}"] = removed
    reports = shop.root / "reports"
    if reports.exists():
        shutil.rmtree(reports)
        counts["reports deleted"] = 1

    build_features(shop, force=True)  # a rebuild drops them from every feature output
    record = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "id_hash": hashed(customer_id, salt_of(shop)),
        "rows": counts,
    }
    with (shop.root / ERASURES).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    return counts


def still_present(shop: ShopPaths, customer_id: str) -> list[str]:
    """Files under the shop that still mention the id (Parquet read as tables, the rest as text)."""
    found = []
    for path in sorted(shop.root.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            text_columns = [
                name
                for name in frame.columns
                if pd.api.types.is_string_dtype(frame[name])
                or frame[name].dtype == object
                or isinstance(frame[name].dtype, pd.CategoricalDtype)
            ]
            if any((frame[name].astype(str) == customer_id).any() for name in text_columns):
                found.append(str(path))
        elif customer_id.encode() in path.read_bytes():
            found.append(str(path))
    return found
