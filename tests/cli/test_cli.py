"""The command line as a user runs it: where it wrote, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from storewise import columns as c

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def storewise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=300)


def test_generate_then_check(tmp_path: Path) -> None:
    shop = tmp_path / "demo"
    done = storewise(
        "data", "generate", "--shop-dir", str(shop), "--customers", "500", "--products", "20", "--days", "60"
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {shop / 'raw'}" in done.stdout
    assert "simulating days" in done.stderr, "long work shows a progress bar"
    assert len(pd.read_parquet(shop / "raw" / "customers.parquet")) == 500
    checked = storewise("data", "check", "--shop-dir", str(shop))
    assert checked.returncode == 0, checked.stderr
    assert "ok:" in checked.stdout
    assert "customers rows: 500" in checked.stdout


def test_failed_import_exits_2_and_leaves_the_shop_as_it_was(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    good = tmp_path / "good.csv"
    good.write_text(
        f"{HEADER}\n536365,85123A,HEART HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
    )
    assert (
        storewise(
            "data", "import", str(good), "--format", "online-retail", "--shop-dir", str(shop)
        ).returncode
        == 0
    )
    before = pd.read_parquet(shop / "raw" / "orders.parquet")

    broken = tmp_path / "broken.csv"
    broken.write_text("InvoiceNo,Description\n1,x\n")
    failed = storewise("data", "import", str(broken), "--format", "online-retail", "--shop-dir", str(shop))
    assert failed.returncode == 2
    assert failed.stderr.startswith(f"error: {broken}, column 'StockCode': missing column 'StockCode'")
    assert "Traceback" not in failed.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(shop / "raw" / "orders.parquet"), before)
    assert not list(shop.glob(".staging-*"))


def test_weekly_sales_import_and_its_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text(
        "store,item_id,week_start,units,unit_price\n1,A,2024-01-01,5,2.50\n1,A,2024-01-08,x,2.50\n"
    )
    shop = tmp_path / "weekly"
    done = storewise("data", "import", str(path), "--format", "weekly-sales", "--shop-dir", str(shop))
    assert done.returncode == 0, done.stderr
    assert "rows read: 2" in done.stdout
    assert "rejected: 1" in done.stdout
    report = pd.read_csv(shop / "import_report.csv")
    assert report[["source_row", "column"]].values.tolist() == [[3, "units"]]
    period = storewise("data", "import", str(path), "--format", "weekly-sales", "--period", "month")
    assert period.returncode == 2
    assert "'--period'" in period.stderr
    assert "'month'" in period.stderr
    family = storewise("data", "generate", "--shop-dir", str(tmp_path / "g"), "--demand-family", "cubic")
    assert family.returncode == 2
    assert "'--demand-family'" in family.stderr
    assert not (tmp_path / "g").exists()


def test_check_of_a_directory_without_a_shop(tmp_path: Path) -> None:
    done = storewise("data", "check", "--shop-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'shop.yaml'}: file not found"


def test_features_build_of_a_directory_without_a_shop(tmp_path: Path) -> None:
    done = storewise("features", "build", "--shop-dir", str(tmp_path / "none"))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: {tmp_path / 'none'}: no shop here (no shop.yaml); "
        "run `storewise data import` or `storewise data generate` first"
    )
    assert not (tmp_path / "none").exists(), "a failed build creates nothing"


def test_import_prints_counts_and_where_it_wrote(tmp_path: Path, online_retail_sample: Path) -> None:
    shop = tmp_path / "retail"
    done = storewise(
        "data",
        "import",
        str(online_retail_sample),
        "--format",
        "online-retail",
        "--shop-dir",
        str(shop),
    )
    assert done.returncode == 0, done.stderr
    assert "rows read: 110,560" in done.stdout
    assert f"wrote {shop / 'raw'}" in done.stdout
    report = pd.read_csv(shop / "import_report.csv")
    assert set(report["action"]) == {"duplicate", "set_aside", "return", "guest"}
    assert len(pd.read_parquet(shop / "raw" / "orders.parquet").query(f"{c.RETURNED}")) > 0
