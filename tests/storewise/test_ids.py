"""One customer-id rule: `17850`, `17850.0` and `17850.00` are one customer in the import,
the batch CLI, the service and erasure, and nobody else writes the rule again."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from inference.recommender.batch import read_customer_ids
from intake.importers.canonical import import_canonical
from intake.importers.common import Consent, write_import
from intake.importers.online_retail import import_online_retail
from storewise import columns as c
from storewise.ids import normalize_customer_id, normalize_customer_ids
from storewise.shop import ShopPaths
from tests import layers
from tests.helpers import REPO


@pytest.mark.parametrize(
    ("given", "customer"),
    [
        ("17850", "17850"),
        ("17850.0", "17850"),
        ("17850.00", "17850"),
        (" 17850.000 ", "17850"),
        (17850.0, "17850"),
        ("17850.5", "17850.5"),
        ("C000028", "C000028"),
        ("A.0", "A.0"),
        ("0.0", "0"),
    ],
)
def test_one_rule_for_every_spelling(given: object, customer: str) -> None:
    assert normalize_customer_id(given) == customer
    assert normalize_customer_id(normalize_customer_id(given)) == customer, (
        "applying it twice changes nothing"
    )
    assert normalize_customer_ids(pd.Series([str(given)], dtype="str")).iloc[0] == customer


def test_the_online_retail_import_makes_one_customer(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
        "536366,71053,WHITE METAL LANTERN,6,2010-12-02 08:26:00,3.39,17850.00,United Kingdom\n"
        "536367,71053,WHITE METAL LANTERN,2,2010-12-03 08:26:00,3.39,17850,United Kingdom\n"
    )
    result = import_online_retail(export, consent=Consent.PERSONALIZATION)
    assert result.tables[c.ORDERS][c.CUSTOMER_ID].tolist() == ["17850"] * 3
    assert result.tables[c.CUSTOMERS][c.CUSTOMER_ID].tolist() == ["17850"]


def test_the_canonical_import_joins_spellings_across_files(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "orders.csv").write_text(
        "order_id,customer_id,item_id,quantity,unit_price,ordered_at,returned\n"
        "o1,17850.00,RG1,1,10.0,2026-01-02T10:00:00+08:00,false\n"
        "o2,17850.0,RG1,1,10.0,2026-01-03T10:00:00+08:00,false\n"
    )
    (folder / "customers.csv").write_text(
        "customer_id,signup_date,region,is_member,member_since,consent_personalization,consent_marketing\n"
        "17850,2025-01-01T00:00:00+08:00,North,false,,true,false\n"
    )
    result = import_canonical(
        folder, consent=Consent.PERSONALIZATION, timezone="Asia/Kuala_Lumpur", currency="RM"
    )
    assert result.tables[c.ORDERS][c.CUSTOMER_ID].tolist() == ["17850", "17850"], "no order is an orphan"
    assert result.tables[c.CUSTOMERS][c.CUSTOMER_ID].tolist() == ["17850"]


def test_the_batch_cli_reads_each_spelling_as_one_customer(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("customer_id\n17850\n17850.0\n 17850.00\nC000028\n")
    assert read_customer_ids(ids) == ["17850", "C000028"]


def test_erase_finds_the_customer_however_the_id_is_written(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
        "536366,71053,WHITE METAL LANTERN,6,2010-12-02 08:26:00,3.39,12583.0,France\n"
    )
    shop = ShopPaths(tmp_path / "shop")
    write_import(shop, import_online_retail(export, consent=Consent.PERSONALIZATION))
    done = subprocess.run(
        [sys.executable, "-m", "cli", "erase", "17850.00", "--shop-dir", str(shop.root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    customers = pd.read_parquet(shop.table(c.CUSTOMERS))[c.CUSTOMER_ID].tolist()
    assert customers == ["12583"]
    assert "17850" not in pd.read_parquet(shop.table(c.ORDERS))[c.CUSTOMER_ID].dropna().tolist()


def test_the_rule_is_written_once_and_used_by_every_entry_point() -> None:
    users = {
        "intake/importers/online_retail.py",
        "intake/importers/canonical.py",
        "inference/recommender/batch.py",
        "inference/recommender/answers.py",
        "serving/service.py",
        "cli/privacy.py",
    }
    for user in users:
        tree = ast.parse((REPO / user).read_text(encoding="utf-8"))
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "storewise.ids"
            for alias in node.names
        }
        assert imported & {"normalize_customer_id", "normalize_customer_ids"}, user
    for package in layers.PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if path == REPO / "storewise" / "ids.py":
                continue
            text = path.read_text(encoding="utf-8")
            assert "def normalize_customer_id" not in text, f"{path} writes the rule again"
            assert r"(\d+)\.0" not in text, f"{path} writes the rule again"
