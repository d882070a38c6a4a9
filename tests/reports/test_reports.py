"""The segment and feedback reports: charts, tables, exports, and missing-input errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from features.pipeline import build_features
from reports.feedback import write_feedback_report
from reports.segments import write_segment_report
from storewise.errors import DataError
from storewise.shop import ShopPaths


def test_segment_report_has_charts_tables_and_exports(small_shop: ShopPaths, tmp_path: Path) -> None:
    shop = ShopPaths(tmp_path / "shop")
    shutil.copytree(small_shop.root, shop.root)
    build_features(shop)
    page = write_segment_report(shop)
    text = page.read_text()
    for heading in ("RFM segments", "Journey funnel", "Behavioural clusters"):
        assert heading in text
    for image in ("rfm_segments.png", "spend_by_segment.png", "rf_grid.png", "funnel.png", "clusters.png"):
        assert (page.parent / image).stat().st_size > 1000
        assert image in text
    segments = pd.read_csv(page.parent / "segments.csv")
    rfm = pd.read_parquet(shop.features / "rfm.parquet")
    assert segments["customers"].sum() == len(rfm)
    customers = pd.read_csv(page.parent / "customers_by_segment.csv")
    assert {"customer_id", "segment", "cluster"} <= set(customers.columns)


def test_missing_logs_and_features_are_one_clear_message(tmp_path: Path, small_shop: ShopPaths) -> None:
    shop = ShopPaths(tmp_path / "shop")
    shutil.copytree(small_shop.root, shop.root)
    with pytest.raises(DataError, match="feature output missing; run `storewise features build` first"):
        write_segment_report(shop)
    with pytest.raises(DataError, match="no log yet"):
        write_feedback_report(shop)


def test_the_feedback_report_reads_every_workers_files_live_and_rotated(
    tmp_path: Path, small_shop: ShopPaths
) -> None:
    """Three files per log (two workers' live files and one rotated), written as the service
    writes them: the report counts every line of every file."""
    import json

    shop = ShopPaths(tmp_path / "shop")
    shutil.copytree(small_shop.root, shop.root)
    shop.logs.mkdir()
    names = ["vm-101.jsonl", "vm-102.jsonl", "vm-101.20261201T000000.000000.jsonl"]
    for number, name in enumerate(names):
        events = [
            {
                "kind": kind,
                "source": "recommendation",
                "item_id": f"I{number}",
                "recommendation_source": "trending",
            }
            for kind in ("impression", "impression", "click")
        ] + [
            {
                "kind": "purchase",
                "source": "price",
                "item_id": f"I{number}",
                "request_id": f"r{number}",
                "price": 10.0,
            }
        ]
        (shop.logs / f"feedback.{name}").write_text("".join(json.dumps(event) + "\n" for event in events))
        audit = {
            "request_id": f"r{number}",
            "item_id": f"I{number}",
            "base_price": 10.0,
            "previous_price": 12.0,
        }
        (shop.logs / f"price_audit.{name}").write_text(json.dumps(audit) + "\n")
    page = write_feedback_report(shop)
    by_source = pd.read_csv(page.parent / "by_recommendation_source.csv").set_index("recommendation_source")
    assert by_source.loc["trending", "impression"] == 6
    assert by_source.loc["trending", "click"] == 3
    by_change = pd.read_csv(page.parent / "by_price_change.csv").set_index("price_change")
    assert by_change.loc["price down", "purchase"] == 3  # every purchase found its audit line
    assert by_change.loc["price down", "revenue"] == 30.0
