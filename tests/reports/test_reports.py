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
