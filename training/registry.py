"""The promotion gate and the side-by-side comparison report (recommender and pricing).

A version becomes `champion` only if (1) its run beat every baseline in its own test
comparison, and (2) there is no champion, or the champion was evaluated on the same split
and data hash and the candidate's primary metric is higher. A champion trained on other
data cannot be compared on the same split; the candidate is then promoted on (1) alone
and the reason is recorded. `force` skips the gate and is recorded as a tag.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from storewise.errors import StorewiseError
from training.tracking import CHAMPION, configure


@dataclass(frozen=True)
class GateSpec:
    """What a registered model is judged on."""

    metric: str  # run metric, higher is better
    baseline_tag: str  # run tag: "true" when the run beat its baselines


GATES = {
    "storewise-recommender": GateSpec(metric="ndcg_at_10", baseline_tag="beats_baselines.{primary}"),
    "storewise-pricing": GateSpec(metric="gate_score", baseline_tag="beats_baselines"),
}


@dataclass(frozen=True)
class Decision:
    promoted: bool
    version: str
    reason: str
    previous: str | None


class RegistryError(StorewiseError):
    pass


def _version(client: MlflowClient, name: str, version: str | None) -> tuple[str, str]:
    try:
        if version is None:
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise RegistryError(f"no versions of '{name}' are registered; train one first")
            newest = max(versions, key=lambda v: int(v.version))
            return str(newest.version), str(newest.run_id)
        found = client.get_model_version(name, version)
        return str(found.version), str(found.run_id)
    except MlflowException as error:
        raise RegistryError(f"'{name}' version {version} not found ({error.error_code})") from None


def champion_version(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def promote(name: str, version: str | None = None, *, force: bool = False) -> Decision:
    client = configure()
    if name not in GATES:
        raise RegistryError(f"unknown model '{name}'; use one of {', '.join(GATES)}")
    gate = GATES[name]
    candidate_version, run_id = _version(client, name, version)
    candidate = client.get_run(run_id)
    current = champion_version(client, name)
    if current == candidate_version:
        return Decision(False, candidate_version, "is already the champion", current)
    value = candidate.data.metrics.get(gate.metric)
    if value is None:
        raise RegistryError(f"run {run_id} has no metric '{gate.metric}'")

    def accept(reason: str) -> Decision:
        client.set_registered_model_alias(name, CHAMPION, candidate_version)
        client.set_model_version_tag(name, candidate_version, "promotion", reason)
        if force:
            client.set_model_version_tag(name, candidate_version, "promoted_with_force", "true")
        return Decision(True, candidate_version, reason, current)

    if force:
        return accept(f"forced (--force): {gate.metric} {value:.4f}")
    primary = candidate.data.tags.get("primary_protocol", "")
    beats = candidate.data.tags.get(gate.baseline_tag.format(primary=primary))
    if beats != "true":
        best = candidate.data.tags.get(
            f"best_other.{primary}", candidate.data.tags.get("best_other", "a baseline")
        )
        return Decision(
            False,
            candidate_version,
            f"does not beat its baselines ({gate.metric} {value:.4f} vs {best})",
            current,
        )
    if current is None:
        return accept(f"first champion: {gate.metric} {value:.4f}, beats its baselines")
    champion_run = client.get_run(str(client.get_model_version(name, current).run_id))
    same_data = champion_run.data.tags.get("data_hash") == candidate.data.tags.get("data_hash")
    same_split = champion_run.data.tags.get("split") == candidate.data.tags.get("split")
    champion_value = champion_run.data.metrics.get(gate.metric, float("-inf"))
    if same_data and same_split:
        if value > champion_value:
            return accept(
                f"{gate.metric} {value:.4f} beats champion v{current} ({champion_value:.4f}) on the same split and data"
            )
        return Decision(False, candidate_version,
                        f"{gate.metric} {value:.4f} does not beat champion v{current} ({champion_value:.4f}) on the same split and data",
                        current)  # fmt: skip
    return accept(
        f"champion v{current} was evaluated on other data or another split, so it cannot be compared; "
        f"promoted because it beats its baselines ({gate.metric} {value:.4f})"
    )


def compare(run_ids: list[str], out: Path) -> Path:
    """An HTML report: parameters that differ, headline metrics of every model side by
    side (baselines included), and a chart; plus the table as CSV beside it."""
    client = configure()
    runs = []
    for run_id in run_ids:
        try:
            runs.append(client.get_run(run_id))
        except MlflowException:
            raise RegistryError(f"run '{run_id}' not found in {client.tracking_uri}") from None
    labels = [f"{run.info.run_name} ({run.info.run_id[:8]})" for run in runs]
    params = pd.DataFrame({label: run.data.params for label, run in zip(labels, runs, strict=True)})
    differing = params[params.nunique(axis=1, dropna=False) > 1].sort_index()
    metrics = pd.DataFrame({label: run.data.metrics for label, run in zip(labels, runs, strict=True)})
    headline = metrics[[any(key.endswith(suffix) for suffix in ("ndcg_at_10", "precision_at_10", "recall_at_10", "hit_rate_at_10",
                                                                  "coverage_at_10", "profit_share_of_oracle", "profit"))
                        for key in metrics.index]].sort_index()  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    headline.to_csv(out.with_suffix(".csv"))
    chart = _chart(metrics)
    tags = pd.DataFrame({label: {key: run.data.tags.get(key, "") for key in ("data_hash", "split", "primary_protocol", "shop")}
                         for label, run in zip(labels, runs, strict=True)})  # fmt: skip
    body = [
        "<h1>Storewise run comparison</h1>",
        f"<p>Runs: {', '.join(html.escape(label) for label in labels)}. Tracking store: {html.escape(client.tracking_uri)}</p>",
        "<h2>Data and split</h2>", tags.to_html(),
        f'<h2>NDCG@10 by model</h2><img alt="NDCG@10 by model and run" src="data:image/png;base64,{chart}"/>' if chart else "",
        "<h2>Headline metrics (test weeks)</h2>", headline.round(4).to_html(),
        "<h2>Parameters that differ</h2>", differing.to_html() if len(differing) else "<p>none</p>",
    ]  # fmt: skip
    style = "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 6px}"
    out.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Run comparison</title><style>{style}</style></head>"
                   f"<body>{''.join(body)}</body></html>", encoding="utf-8")  # fmt: skip
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
