"""`storewise compare`: a side-by-side HTML report of training runs (and a CSV), so a
reviewer sees parameters that differ, every model's headline metrics with the baselines,
each run's hybrid minus every baseline and peer with its paired bootstrap interval over
customers (a win inside the noise is marked as such), and a chart, before promoting."""

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
    intervals = interval_table(metrics)
    if len(intervals):
        intervals.to_csv(out.with_name(out.stem + "_intervals.csv"))
    body = [
        "<h1>Storewise run comparison</h1>",
        f"<p>Runs: {', '.join(html.escape(label) for label in labels)}. Tracking store: {html.escape(client.tracking_uri)}</p>",
        "<h2>Data and split</h2>",
        tags.to_html(),
        f'<h2>NDCG@10 by model</h2><img alt="NDCG@10 by model and run" src="data:image/png;base64,{chart}"/>'
        if chart
        else "",
        "<h2>Headline metrics (test weeks)</h2>",
        "<p>— : the run did not log it (a model it did not evaluate: LightFM alone is evaluated"
        " on the test weeks only when a blend uses it).</p>",
        headline.round(4).to_html(na_rep="—"),
        "<h2>Hybrid minus each model: NDCG@10 on the test weeks, paired bootstrap interval over customers</h2>",
        "<p>mean [low, high]; <b>clear</b> when the interval excludes zero, otherwise within noise.</p>",
        intervals.to_html(na_rep="—")
        if len(intervals)
        else "<p>none logged (runs from before intervals existed)</p>",
        "<h2>Parameters that differ</h2>",
        differing.to_html(na_rep="—") if len(differing) else "<p>none</p>",
    ]
    style = "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 6px}"
    out.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Run comparison</title><style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>",
        encoding="utf-8",
    )
    return out


def interval_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Rows `protocol.model`, one column per run: the hybrid's NDCG@10 minus the model's as
    "mean [low, high]", with whether the interval clears zero (from the run's
    `<protocol>.hybrid_minus.<model>.{mean,low,high}` metrics)."""
    keys = [key for key in metrics.index if ".hybrid_minus." in key and not key.startswith("validation.")]
    pairs = sorted({key.rsplit(".", 1)[0] for key in keys})
    rows: dict[str, dict[str, str]] = {}
    for pair in pairs:
        protocol, _, model = pair.partition(".hybrid_minus.")
        row = {}
        for run in metrics.columns:
            mean, low, high = (
                metrics.at[f"{pair}.{part}", run] if f"{pair}.{part}" in metrics.index else None
                for part in ("mean", "low", "high")
            )
            if mean is None or low is None or high is None or pd.isna(mean):
                row[run] = ""
                continue
            verdict = "clear" if low > 0 or high < 0 else "within noise"
            row[run] = f"{mean:+.4f} [{low:+.4f}, {high:+.4f}] {verdict}"
        rows[f"{protocol}.{model}"] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(metrics.columns))


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
