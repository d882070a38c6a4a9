"""`storewise report experiment`: champion against challenger, from the service's feedback.

The unit is the customer (the service assigns customers, not requests, to a variant), so
every interval is over customers: per variant, the customers who saw a recommendation of
the experiment, their impressions, click-through (clicks per impression: a ratio of two
sums, its interval by the delta method over customers), conversion (the share who bought
a recommended item) and revenue per customer (the mean of each customer's revenue from
recommended items), each with a normal interval at the settings' confidence (many
customers make the means normal; revenue's heavy tail needs hundreds, and the report says
how many it has).

The decision, on `primary_metric` (revenue per customer by default), is a fixed-horizon
test: the experiment first needs the customers that detect a `minimum_effect` relative
change with `power` at that confidence (from the variances seen so far and the split
actually served); until then the answer is "keep running" with the days that will take
at the traffic seen. Then the challenger minus the champion, with its interval (Welch):
above zero is "promote", anything else "stop" (worse, or no difference as large as the
smallest one worth having). Before the planned size, only a difference beyond a stricter
boundary decides early (z = max(3, z / sqrt(t)) with t the share of the planned customers
reached: Haybittle-Peto's 3 with O'Brien-Fleming's shape): a clear win or a clear harm
need not wait, and the rate of false
differences stays at the nominal 1 - confidence (measured by the simulator,
benchmarks/README.md), where stopping at the first daily "significant" interval would not.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import norm

from intake.tables import read_table
from reports.feedback import read_log
from storewise import columns as c
from storewise.errors import DataError
from storewise.experiments import CHALLENGER, CHAMPION, Experiment
from storewise.service_logs import FEEDBACK
from storewise.settings import ExperimentSettings
from storewise.shop import ShopPaths

METRICS = ("click_through", "conversion", "revenue_per_customer")
LABELS = {
    "click_through": "click-through",
    "conversion": "conversion",
    "revenue_per_customer": "revenue per customer",
}
PER_CUSTOMER = ["impressions", "clicks", "purchases", "revenue"]
EARLY_Z = 3.0


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    se: float


@dataclass(frozen=True)
class VariantSummary:
    variant: str
    customers: int
    impressions: int
    click_through: Estimate
    conversion: Estimate
    revenue_per_customer: Estimate


@dataclass(frozen=True)
class Decision:
    action: str  # "promote", "stop" or "keep running"
    reason: str
    metric: str
    difference: Estimate | None  # challenger - champion on the primary metric
    relative: float | None
    customers_needed: int | None  # in the challenger, for the planned power
    more_days: int | None


@dataclass(frozen=True)
class ExperimentResult:
    experiment: str
    days: float
    confidence: float
    variants: list[VariantSummary]
    decision: Decision

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def per_customer(events: pd.DataFrame, experiment_id: str) -> pd.DataFrame:
    """One row per (variant, customer) of the experiment: impressions, clicks, purchases,
    revenue (price x quantity of purchases) and the day of their first event."""
    if "experiment" not in events:
        return pd.DataFrame(columns=["variant", "customer_id", *PER_CUSTOMER, "first_day"])
    mine = events[
        (events["experiment"] == experiment_id)
        & (events["source"] == "recommendation")
        & events["customer_id"].notna()
    ].copy()
    mine["day"] = pd.to_datetime(mine["at"], utc=True, format="ISO8601").dt.floor("D")
    kind = mine["kind"]
    price = mine["price"].astype(float).fillna(0.0) if "price" in mine else 0.0
    quantity = mine["quantity"].astype(float).fillna(1.0) if "quantity" in mine else 1.0
    mine = mine.assign(
        impressions=(kind == "impression").astype(int),
        clicks=(kind == "click").astype(int),
        purchases=(kind == "purchase").astype(int),
        revenue=np.where(kind == "purchase", price * quantity, 0.0),
    )
    table = mine.groupby(["variant", "customer_id"], as_index=False).agg(
        impressions=("impressions", "sum"),
        clicks=("clicks", "sum"),
        purchases=("purchases", "sum"),
        revenue=("revenue", "sum"),
        first_day=("day", "min"),
    )
    # a customer counts from their first impression (the answer they were shown)
    return table[table["impressions"] > 0].reset_index(drop=True)


def _normal(value: float, se: float, z: float) -> Estimate:
    return Estimate(float(value), float(value - z * se), float(value + z * se), float(se))


def metric_moments(rows: pd.DataFrame, metric: str) -> tuple[float, float, int]:
    """(estimate, per-customer variance of its linearization, customers): the mean of a
    per-customer value, or for click-through the ratio of sums by the delta method."""
    n = len(rows)
    if metric == "click_through":
        shown = rows["impressions"].to_numpy(float)
        clicks = rows["clicks"].to_numpy(float)
        ratio = clicks.sum() / max(shown.sum(), 1.0)
        linear = (clicks - ratio * shown) / max(shown.mean(), 1e-12)
        return float(ratio), float(linear.var(ddof=1)) if n > 1 else 0.0, n
    values = (
        (rows["purchases"] > 0).to_numpy(float) if metric == "conversion" else rows["revenue"].to_numpy(float)
    )
    return float(values.mean()) if n else 0.0, float(values.var(ddof=1)) if n > 1 else 0.0, n


def summarize(rows: pd.DataFrame, variant: str, z: float) -> VariantSummary:
    estimates = {}
    for metric in METRICS:
        value, variance, n = metric_moments(rows, metric)
        estimates[metric] = _normal(value, math.sqrt(variance / n) if n else math.inf, z)
    return VariantSummary(variant, len(rows), int(rows["impressions"].sum()), **estimates)


def analyze(
    table: pd.DataFrame,
    days: float,
    settings: ExperimentSettings,
    experiment_id: str = "",
    reachable: int | None = None,
) -> ExperimentResult:
    """Per-variant figures and the decision, from `per_customer`'s table over `days` days;
    `reachable`: the most customers the challenger can ever get (its share of the shop's
    customers who consent to personalization), when known."""
    z = float(norm.ppf(1 - (1 - settings.confidence) / 2))
    groups = {variant: table[table["variant"] == variant] for variant in (CHAMPION, CHALLENGER)}
    variants = [summarize(rows, variant, z) for variant, rows in groups.items()]
    decision = decide(groups[CHAMPION], groups[CHALLENGER], days, settings, z, reachable)
    return ExperimentResult(experiment_id, days, settings.confidence, variants, decision)


def decide(
    champion: pd.DataFrame,
    challenger: pd.DataFrame,
    days: float,
    settings: ExperimentSettings,
    z: float,
    reachable: int | None = None,
) -> Decision:
    metric = settings.primary_metric
    mean_a, var_a, n_a = metric_moments(champion, metric)
    mean_b, var_b, n_b = metric_moments(challenger, metric)
    if min(n_a, n_b) < 2 or mean_a <= 0:
        return Decision(
            "keep running",
            f"too little data yet ({n_a} champion and {n_b} challenger customers with "
            f"{LABELS[metric]} {mean_a:.4g} on the champion)",
            metric,
            None,
            None,
            None,
            None,
        )
    se = math.sqrt(var_a / n_a + var_b / n_b)
    difference = _normal(mean_b - mean_a, se, z)
    relative = difference.value / mean_a
    # customers the challenger needs so that a change of minimum_effect is found with `power`
    # at this confidence, at the split served so far (n_a / n_b champion customers per one)
    target_se = settings.minimum_effect * mean_a / (z + float(norm.ppf(settings.power)))
    needed = math.ceil((var_a * n_b / n_a + var_b) / target_se**2)
    # the early boundary: with a share t of the planned customers, a difference decides
    # only beyond max(3, z / sqrt(t)) (Haybittle-Peto's 3 and O'Brien-Fleming's shape)
    early = n_b < needed and abs(difference.value) / max(se, 1e-300) >= max(
        EARLY_Z, z / math.sqrt(n_b / needed)
    )
    if n_b < needed and not early:
        return waiting(n_b, needed, days, settings, reachable, difference, relative)
    if difference.value > 0 and (early or difference.low > 0):
        action, why = "promote", f"the challenger is better: {relative:+.1%} {LABELS[metric]}"
    elif difference.value < 0 and (early or difference.high < 0):
        action, why = "stop", f"the challenger is worse: {relative:+.1%} {LABELS[metric]}"
    else:
        action, why = (
            "stop",
            (
                f"no difference found ({relative:+.1%} {LABELS[metric]}, interval includes zero) with enough "
                f"customers to see a {settings.minimum_effect:.0%} change: keep the champion"
            ),
        )
    interval = f"{settings.confidence:.0%} interval {difference.low:+.4g} to {difference.high:+.4g}"
    if early:
        interval += f"; early, with {n_b} of the {needed} planned challenger customers, past the stricter early boundary"
    return Decision(action, f"{why} ({interval})", metric, difference, relative, needed, 0)


def waiting(
    n_b: int,
    needed: int,
    days: float,
    settings: ExperimentSettings,
    reachable: int | None,
    difference: Estimate,
    relative: float,
) -> Decision:
    """ "keep running", with the days the planned customers take at the traffic seen (a day
    at least), or, when the shop has fewer customers than that for the challenger, what to
    change: more days would never get there."""
    metric = settings.primary_metric
    plan = f"{n_b} of the {needed} challenger customers needed to detect a {settings.minimum_effect:.0%} change of {LABELS[metric]}"
    if reachable is not None and needed > reachable:
        return Decision(
            "keep running",
            f"{plan}, more than this shop can give the challenger (at most {reachable}: its share of the "
            "customers who consent to personalization): raise the share, or minimum_effect in "
            "config/experiments.yaml; until then only a clear difference (past the early boundary) decides",
            metric,
            difference,
            relative,
            needed,
            None,
        )
    per_day = n_b / max(days, 1.0)
    more = math.ceil((needed - n_b) / per_day) if per_day > 0 else None
    return Decision(
        "keep running",
        plan + (f": about {more} more days at the current traffic" if more is not None else ""),
        metric,
        difference,
        relative,
        needed,
        more,
    )


def reachable_customers(shop: ShopPaths, experiment: Experiment) -> int | None:
    """The challenger's share of the shop's customers who consent to personalization (the
    only ones in an experiment): an upper bound, as those the model has no history for get
    the non-personalized answer too; None when the shop has no customers table."""
    if not shop.table(c.CUSTOMERS).exists():
        return None
    customers = read_table(shop, c.CUSTOMERS)
    if customers is None or c.CONSENT_PERSONALIZATION not in customers:
        return None
    return math.floor(experiment.share * int(customers[c.CONSENT_PERSONALIZATION].astype(bool).sum()))


def experiment_days(events: pd.DataFrame, experiment: Experiment) -> float:
    """Days the experiment has run: from its start to its stop (or the last event)."""
    start = pd.Timestamp(experiment.started_at)
    times = pd.to_datetime(events["at"], utc=True, format="ISO8601") if len(events) else pd.Series([start])
    end = pd.Timestamp(experiment.stopped_at) if experiment.stopped_at else max(times.max(), start)
    return max((end - start).total_seconds() / 86_400, 1 / 24)


# -- the report ---------------------------------------------------------------------------


def write_experiment_report(
    shop: ShopPaths, experiment: Experiment, settings: ExperimentSettings
) -> tuple[Path, ExperimentResult]:
    """HTML with a chart, a CSV per variant and the result as JSON (the evidence that
    `storewise promote --experiment` records) under `<shop>/reports/experiment/<id>/`."""
    events = read_log(shop, FEEDBACK)
    table = per_customer(events, experiment.id)
    if table.empty:
        raise DataError(
            f"no feedback of experiment {experiment.id} yet: the storefront sends impressions, clicks "
            "and purchases with the answer's experiment and variant",
            path=shop.logs / f"{FEEDBACK}*.jsonl",
        )
    result = analyze(
        table,
        experiment_days(events, experiment),
        settings,
        experiment.id,
        reachable_customers(shop, experiment),
    )
    folder = shop.root / "reports" / "experiment" / experiment.id
    folder.mkdir(parents=True, exist_ok=True)
    variants_table(result).to_csv(folder / "variants.csv", index=False)
    (folder / "result.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    chart(result, folder / "experiment.png")
    page = folder / "index.html"
    page.write_text(render(result, experiment), encoding="utf-8")
    return page, result


def variants_table(result: ExperimentResult) -> pd.DataFrame:
    rows = []
    for summary in result.variants:
        row: dict[str, object] = {
            "variant": summary.variant,
            "customers": summary.customers,
            "impressions": summary.impressions,
        }
        for metric in METRICS:
            estimate: Estimate = getattr(summary, metric)
            row.update(
                {metric: estimate.value, f"{metric}_low": estimate.low, f"{metric}_high": estimate.high}
            )
        rows.append(row)
    return pd.DataFrame(rows)


def chart(result: ExperimentResult, path: Path) -> None:
    """Each metric per variant with its interval, and the primary metric's difference."""
    figure, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    colours: dict[str, str] = {CHAMPION: "#4c72b0", CHALLENGER: "#dd8452"}
    for axis, metric in zip(axes[:3], METRICS, strict=True):
        for x, summary in enumerate(result.variants):
            estimate: Estimate = getattr(summary, metric)
            error = [[estimate.value - estimate.low], [estimate.high - estimate.value]]
            axis.bar(x, estimate.value, color=colours[summary.variant], yerr=error, capsize=6)
        axis.set_xticks(range(len(result.variants)), [summary.variant for summary in result.variants])
        axis.set_title(LABELS[metric])
    decision = result.decision
    axis = axes[3]
    if decision.difference is not None:
        d = decision.difference
        axis.errorbar(
            [0], [d.value], yerr=[[d.value - d.low], [d.high - d.value]], fmt="o", capsize=8, color="k"
        )
        axis.axhline(0, color="grey", linewidth=1)
    axis.set_xticks([0], [f"challenger - champion\n{LABELS[decision.metric]}"])
    axis.set_title(f"decision: {decision.action}")
    figure.suptitle(f"{result.experiment}: intervals at {result.confidence:.0%}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def render(result: ExperimentResult, experiment: Experiment) -> str:
    head = "".join(
        f"<th>{html.escape(name)}</th>" for name in ("variant", "customers", "impressions", *LABELS.values())
    )
    body = ""
    for summary in result.variants:
        cells = [summary.variant, f"{summary.customers:,}", f"{summary.impressions:,}"]
        for metric in METRICS:
            e: Estimate = getattr(summary, metric)
            digits = 2 if metric == "revenue_per_customer" else 4
            cells.append(f"{e.value:.{digits}f} <small>({e.low:.{digits}f} to {e.high:.{digits}f})</small>")
        body += "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
    decision = result.decision
    ran = f"{result.days:.1f} days" if result.days >= 1 else f"{result.days * 24:.1f} hours"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Experiment {html.escape(result.experiment)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .7em;text-align:right}}.decision{{font-size:1.3em;padding:.6em;background:#f3f3f3}}</style>
</head><body><h1>Experiment {html.escape(result.experiment)}</h1>
<p>Champion v{html.escape(experiment.champion)} against challenger v{html.escape(experiment.challenger)} on
{experiment.share:.0%} of the customers the champion personalizes for, since {html.escape(experiment.started_at)}
({ran}, {html.escape(experiment.status)}). Intervals at {result.confidence:.0%}, over customers.</p>
<p class="decision"><b>{html.escape(decision.action)}</b>: {html.escape(decision.reason)}.</p>
<table><tr>{head}</tr>{body}</table>
<p><img src="experiment.png" alt="the metrics per variant with their intervals" width="100%"></p>
<p>Files: <code>variants.csv</code>, <code>result.json</code> (what <code>storewise promote --experiment</code> records).</p>
</body></html>
"""
