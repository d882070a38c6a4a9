"""`storewise compare`: a side-by-side HTML report of training runs (and a CSV), so a
reviewer sees parameters that differ, every model's headline metrics with the baselines,
and a chart, before promoting."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from mlflow.exceptions import MlflowException

from inference.registry import configure
from storewise.errors import StorewiseError


class RunNotFoundError(StorewiseError):
    pass


def compare(run_ids: list[str], out: Path) -> Path:
    """An HTML report: parameters that differ, headline metrics of every model side by
    side (baselines included), and a chart; plus the table as CSV beside it."""
    client = configure()
    runs = []
    for run_id in run_ids:
        try:
            runs.append(client.get_run(run_id))
        except MlflowException:
            raise RunNotFoundError(f"run '{run_id}' not found in {client.tracking_uri}") from None
    labels = [f"{run.info.run_name} ({run.info.run_id[:8]})" for run in runs]
    params = pd.DataFrame({label: run.data.params for label, run in zip(labels, runs, strict=True)})
    differing = params[params.nunique(axis=1, dropna=False) > 1].sort_index()
    metrics = pd.DataFrame({label: run.data.metrics for label, run in zip(labels, runs, strict=True)})
    headline = metrics[
        [
            any(
                key.endswith(suffix)
                for suffix in (
                    "ndcg_at_10",
                    "precision_at_10",
                    "recall_at_10",
                    "hit_rate_at_10",
                    "coverage_at_10",
                    "profit_share_of_oracle",
                    "profit",
                )
            )
            for key in metrics.index
        ]
    ].sort_index()
    out.parent.mkdir(parents=True, exist_ok=True)
    headline.to_csv(out.with_suffix(".csv"))
    chart = _chart(metrics)
    tags = pd.DataFrame(
        {
            label: {
                key: run.data.tags.get(key, "") for key in ("data_hash", "split", "primary_protocol", "shop")
            }
            for label, run in zip(labels, runs, strict=True)
        }
    )
    body = [
        "<h1>Storewise run comparison</h1>",
        f"<p>Runs: {', '.join(html.escape(label) for label in labels)}. Tracking store: {html.escape(client.tracking_uri)}</p>",
        "<h2>Data and split</h2>",
        tags.to_html(),
        f'<h2>NDCG@10 by model</h2><img alt="NDCG@10 by model and run" src="data:image/png;base64,{chart}"/>'
        if chart
        else "",
        "<h2>Headline metrics (test weeks)</h2>",
        headline.round(4).to_html(),
        "<h2>Parameters that differ</h2>",
        differing.to_html() if len(differing) else "<p>none</p>",
    ]
    style = "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 6px}"
    out.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Run comparison</title><style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>",
        encoding="utf-8",
    )
    return out


def _chart(metrics: pd.DataFrame) -> str:
    rows = [
        key
        for key in metrics.index
        if key.count(".") == 2 and key.endswith(".ndcg_at_10") and not key.startswith("validation")
    ]
    if not rows:
        return ""
    table = metrics.loc[rows]
    table.index = [key.removesuffix(".ndcg_at_10") for key in table.index]
    table = table.sort_values(table.columns[0])
    figure, axis = plt.subplots(figsize=(9, 0.28 * len(table) + 1.5))
    table.plot.barh(ax=axis)
    axis.set_xlabel("NDCG@10 (protocol.model)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
