"""`storewise report feedback`: what the service's recommendations and prices did.

Reads the service's logs (`<shop>/logs/feedback*.jsonl`, `<shop>/logs/price_audit*.jsonl`:
every worker's file, live and rotated, storewise/service_logs.py) and reports, per recommendation source (personalized, segment, region, trending),
impressions, clicks, add-to-carts, purchases, click-through, conversion and revenue; and
per price change (the base price went up, down or stayed, by the audit record of the
request that showed it), the same for prices shown. Written as HTML with a chart and CSVs.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from storewise.errors import DataError
from storewise.service_logs import FEEDBACK, PRICE_AUDIT, log_files
from storewise.shop import ShopPaths

KINDS = ("impression", "click", "add_to_cart", "purchase")


def read_jsonl(path: Path) -> list[dict[str, object]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise DataError("not a JSON line", path=path, row=number) from None
    return rows


def read_log(shop: ShopPaths, name: str) -> pd.DataFrame:
    """Every line of a service log: all its files, live and rotated, oldest first."""
    files = log_files(shop.logs, name)
    if not files:
        raise DataError(
            "no log yet: the service writes it as the storefront calls it", path=shop.logs / f"{name}*.jsonl"
        )
    return pd.DataFrame([row for path in files for row in read_jsonl(path)])


def funnel_by(events: pd.DataFrame, key: str) -> pd.DataFrame:
    events = events.assign(
        revenue=(events["price"].fillna(0) * events["quantity"].fillna(1)).where(
            events["kind"] == "purchase", 0.0
        )
    )
    counts = events.pivot_table(
        index=key, columns="kind", values="item_id", aggfunc="count", fill_value=0
    ).reindex(columns=list(KINDS), fill_value=0)
    table = counts.assign(revenue=events.groupby(key)["revenue"].sum().round(2))
    impressions = table["impression"].where(table["impression"] > 0)
    table["click_through"] = (table["click"] / impressions).round(4)
    table["conversion"] = (table["purchase"] / impressions).round(4)
    table["revenue_per_impression"] = (table["revenue"] / impressions).round(4)
    return table.reset_index()


def price_change_direction(audit: pd.DataFrame) -> pd.DataFrame:
    change = audit["base_price"] - audit["previous_price"]
    direction = (
        pd.Series("unchanged", index=audit.index)
        .mask(change > 0.005, "price up")
        .mask(change < -0.005, "price down")
    )
    return audit.assign(price_change=direction)[["request_id", "item_id", "price_change"]].drop_duplicates(
        ["request_id", "item_id"]
    )


def write_feedback_report(shop: ShopPaths, out: Path | None = None) -> Path:
    out = out or shop.root / "reports" / "feedback"
    events = read_log(shop, FEEDBACK)
    if events.empty:
        raise DataError("the feedback log is empty", path=shop.logs / f"{FEEDBACK}*.jsonl")
    for column in ("price", "quantity", "recommendation_source", "request_id"):
        if column not in events:
            events[column] = None
    out.mkdir(parents=True, exist_ok=True)
    recommendations = events[events["source"] == "recommendation"].assign(
        recommendation_source=lambda frame: frame["recommendation_source"].fillna("unknown")
    )
    by_source = (
        funnel_by(recommendations, "recommendation_source") if len(recommendations) else pd.DataFrame()
    )
    prices = events[events["source"] == "price"]
    by_change = pd.DataFrame()
    if len(prices) and log_files(shop.logs, PRICE_AUDIT):
        directions = price_change_direction(read_log(shop, PRICE_AUDIT))
        joined = prices.merge(directions, on=["request_id", "item_id"], how="left")
        joined["price_change"] = joined["price_change"].fillna("not in the audit")
        by_change = funnel_by(joined, "price_change")
    by_source.to_csv(out / "by_recommendation_source.csv", index=False)
    by_change.to_csv(out / "by_price_change.csv", index=False)

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    if len(by_source):
        by_source.set_index("recommendation_source")[["click_through", "conversion"]].plot.bar(
            ax=axes[0], rot=0
        )
        axes[0].set_title("Recommendations: click-through and conversion")
    if len(by_change):
        by_change.set_index("price_change")["revenue"].plot.bar(ax=axes[1], rot=0, color="#55a868")
        axes[1].set_title("Revenue after prices shown, by price change")
    figure.tight_layout()
    figure.savefig(out / "feedback.png", dpi=110)
    plt.close(figure)
    settings = shop.settings()
    body = [
        f"<h1>Feedback — {html.escape(settings.name)}</h1>",
        f"<p>{len(events):,} events from the service's feedback log; revenue in {html.escape(settings.currency)}.</p>",
        "<img src='feedback.png' alt='feedback' style='max-width:100%'>",
        "<h2>By recommendation source</h2>",
        by_source.to_html(index=False) if len(by_source) else "<p>none</p>",
        "<h2>By price change</h2>",
        by_change.to_html(index=False) if len(by_change) else "<p>none</p>",
    ]
    page = out / "index.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Feedback</title></head><body style='font-family:sans-serif'>"
        + "".join(body)
        + "</body></html>",
        encoding="utf-8",
    )
    return page
