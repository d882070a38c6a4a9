"""`storewise report segments`: RFM segments, the journey funnel and the behavioural
clusters as an HTML page with PNG charts, and CSV exports a marketer can open.

Everything comes from the feature outputs (`features build`), so the report shows the same
numbers the models use. Only pseudonymous ids appear.
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from features.clusters import CLUSTER
from features.journey import ALL, PERIOD, SEGMENT
from features.pipeline import Outputs, load_output
from features.rfm import SEGMENTS
from storewise import columns as c
from storewise.errors import DataError
from storewise.shop import ShopPaths, ShopSettings

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{margin-bottom:0} .sub{color:#666;margin-top:.2rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem} td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0} .grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.note{color:#555;font-size:.9rem}
"""


def segment_summary(rfm: pd.DataFrame) -> pd.DataFrame:
    grouped = rfm.groupby("segment")
    summary = pd.DataFrame(
        {
            "customers": grouped.size(),
            "share": (grouped.size() / len(rfm)).round(3),
            "median_recency_days": grouped["recency_days"].median(),
            "mean_orders": grouped["frequency"].mean().round(2),
            "mean_spend": grouped["monetary"].mean().round(2),
            "total_spend": grouped["monetary"].sum().round(2),
        }
    )
    order = [name for name in SEGMENTS if name in summary.index]
    return summary.loc[order].rename_axis("segment").reset_index()


def _save(figure: plt.Figure, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def write_exports(
    out: Path, rfm: pd.DataFrame, summary: pd.DataFrame, features: dict[str, pd.DataFrame]
) -> None:
    """The CSVs a marketer opens: segments, customers by segment (with cluster), funnel, clusters."""
    summary.to_csv(out / "segments.csv", index=False)
    customers = rfm[
        [c.CUSTOMER_ID, "segment", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score"]
    ]
    customers.merge(features["clusters"], on=c.CUSTOMER_ID, how="left").to_csv(
        out / "customers_by_segment.csv", index=False
    )
    features["funnel"].to_csv(out / "journey_funnel.csv", index=False)
    features["profiles"].to_csv(out / "cluster_profiles.csv", index=False)


def segment_charts(out: Path, rfm: pd.DataFrame, summary: pd.DataFrame, currency: str) -> list[str]:
    """Segment sizes, spend by segment, and the recency x frequency grid, as PNGs."""
    charts = []
    for column, label, colour, title, name in (
        ("customers", "customers", "#4c72b0", "RFM segments", "rfm_segments.png"),
        ("total_spend", f"spend ({currency})", "#55a868", "Spend by segment", "spend_by_segment.png"),
    ):
        figure, axis = plt.subplots(figsize=(7, 4))
        axis.barh(summary["segment"][::-1], summary[column][::-1], color=colour)
        axis.set_xlabel(label)
        axis.set_title(title)
        charts.append(_save(figure, out / name))
    heat = rfm.pivot_table(
        index="r_score", columns="f_score", values=c.CUSTOMER_ID, aggfunc="count", fill_value=0
    ).sort_index(ascending=False)
    figure, axis = plt.subplots(figsize=(5, 4))
    image = axis.imshow(heat.to_numpy(), cmap="Blues")
    axis.set_xticks(range(len(heat.columns)), heat.columns)
    axis.set_yticks(range(len(heat.index)), heat.index)
    axis.set_xlabel("F score")
    axis.set_ylabel("R score")
    axis.set_title("Customers by recency and frequency")
    figure.colorbar(image)
    charts.append(_save(figure, out / "rf_grid.png"))
    return charts


def funnel_chart(out: Path, funnel_all: pd.DataFrame) -> None:
    figure, axis = plt.subplots(figsize=(8, 4))
    for column, label in (
        ("view_to_cart", "view → cart"),
        ("cart_to_purchase", "cart → purchase"),
        ("view_to_purchase", "view → purchase"),
    ):
        axis.plot(funnel_all[PERIOD], funnel_all[column], marker="o", label=label)
    axis.set_ylabel("conversion")
    axis.set_title("Journey funnel by month")
    axis.tick_params(axis="x", rotation=45)
    axis.legend()
    _save(figure, out / "funnel.png")


def cluster_chart(out: Path, profiles: pd.DataFrame) -> None:
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.bar(profiles[CLUSTER].astype(str), profiles["customers"], color="#c44e52")
    axis.set_xlabel("cluster")
    axis.set_ylabel("customers")
    axis.set_title("Behavioural clusters")
    _save(figure, out / "clusters.png")


def funnel_note(funnel_all: pd.DataFrame) -> str:
    latest = funnel_all.tail(1)
    if not len(latest):
        return (
            "This shop has no storefront events, so there is no funnel (orders alone show no views or carts)."
        )
    return (
        f"Latest month {html.escape(str(latest[PERIOD].iloc[0]))}: {int(latest['viewed'].iloc[0]):,} journeys, "
        f"{latest['view_to_purchase'].iloc[0]:.1%} bought."
    )


def page_body(
    settings: ShopSettings,
    rfm: pd.DataFrame,
    summary: pd.DataFrame,
    charts: list[str],
    features: dict[str, pd.DataFrame],
) -> list[str]:
    funnel_all, profiles, selection = features["funnel_all"], features["profiles"], features["selection"]
    chosen = selection.loc[selection["chosen"], "k"]
    return [
        f"<h1>Customer segments — {html.escape(settings.name)}</h1>",
        f"<p class='sub'>{len(rfm):,} customers with a purchase; amounts in {html.escape(settings.currency)}. "
        "Exports: <a href='segments.csv'>segments.csv</a>, <a href='customers_by_segment.csv'>customers_by_segment.csv</a>, "
        "<a href='journey_funnel.csv'>journey_funnel.csv</a>, <a href='cluster_profiles.csv'>cluster_profiles.csv</a>.</p>",
        "<h2>RFM segments</h2>",
        "<p class='note'>Recency, frequency and spend scored in quintiles (5 = best); segments from the recency score and the "
        "mean of the frequency and spend scores. See README, Features.</p>",
        "<div class='grid'>" + "".join(f"<img src='{name}' alt='{name}'>" for name in charts[:2]) + "</div>",
        summary.to_html(index=False),
        f"<img src='{charts[2]}' alt='R by F grid' style='max-width:450px'>",
        "<h2>Journey funnel</h2>",
        f"<p>{funnel_note(funnel_all)}</p>",
        *(["<img src='funnel.png' alt='funnel'>", _funnel_table(funnel_all)] if len(funnel_all) else []),
        "<h2>Behavioural clusters</h2>",
        f"<p class='note'>KMeans on standardized behaviour; {int(chosen.iloc[0]) if len(chosen) else len(profiles)} clusters, "
        "the number with the best silhouette score.</p>",
        "<img src='clusters.png' alt='clusters' style='max-width:600px'>",
        profiles.to_html(index=False),
    ]


def write_segment_report(shop: ShopPaths, out: Path | None = None) -> Path:
    """`storewise report segments`: HTML with charts under `<shop>/reports/segments/`, and CSVs."""
    out = out or shop.root / "reports" / "segments"
    out.mkdir(parents=True, exist_ok=True)
    settings = shop.settings()
    rfm = load_output(shop, Outputs.RFM)
    if rfm.empty:
        raise DataError(
            "no customer has a purchase: there are no segments to report", path=shop.features / Outputs.RFM
        )
    funnel = load_output(shop, Outputs.JOURNEY)
    features = {
        "funnel": funnel,
        "funnel_all": funnel[funnel[SEGMENT] == ALL] if len(funnel) else funnel,
        "clusters": load_output(shop, Outputs.CLUSTERS),
        "profiles": load_output(shop, Outputs.CLUSTER_PROFILES),
        "selection": load_output(shop, Outputs.CLUSTER_SELECTION),
    }
    summary = segment_summary(rfm)
    write_exports(out, rfm, summary, features)
    charts = segment_charts(out, rfm, summary, settings.currency)
    if len(features["funnel_all"]):
        funnel_chart(out, features["funnel_all"])
    cluster_chart(out, features["profiles"])
    body = page_body(settings, rfm, summary, charts, features)
    page = out / "index.html"
    page.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Segments</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>",
        encoding="utf-8",
    )
    return page


def _funnel_table(funnel: pd.DataFrame) -> str:
    table = pd.DataFrame(
        {
            "month": funnel[PERIOD],
            "journeys": funnel["viewed"].map("{:,}".format),
            "carted": funnel["carted"].map("{:,}".format),
            "bought": funnel["purchased"].map("{:,}".format),
            "view→cart": funnel["view_to_cart"].map("{:.1%}".format),
            "cart→buy": funnel["cart_to_purchase"].map("{:.1%}".format),
            "view→buy": funnel["view_to_purchase"].map("{:.1%}".format),
            "min view→cart": funnel["median_minutes_view_to_cart"].round(1),
            "min cart→buy": funnel["median_minutes_cart_to_purchase"].round(1),
        }
    )
    return table.to_html(index=False)
