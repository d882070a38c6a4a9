"""The experiment report: per-customer figures from feedback events, intervals worked out
independently, the decision rule, and the written report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.experiment import analyze, per_customer, write_experiment_report
from storewise.experiments import start_experiment
from storewise.service_logs import FEEDBACK
from storewise.settings import ExperimentSettings
from storewise.shop import ShopPaths

Z90 = 1.6448536269514722


def event(
    kind: str, customer: str, variant: str, price: float | None = None, quantity: int = 1, **extra: object
) -> dict[str, object]:
    return {
        "at": "2026-11-02T10:00:00+0800",
        "kind": kind,
        "source": "recommendation",
        "item_id": "RG0001",
        "customer_id": customer,
        "experiment": "exp-1",
        "variant": variant,
        "price": price,
        "quantity": quantity,
        **extra,
    }


def test_per_customer_counts_only_the_experiments_recommendation_events() -> None:
    events = pd.DataFrame(
        [
            event("impression", "a", "champion"),
            event("impression", "a", "champion"),
            event("click", "a", "champion"),
            event("purchase", "a", "champion", price=10.0, quantity=2),
            event("impression", "b", "challenger"),
            event("purchase", "b", "challenger", price=5.0),
            event("impression", "c", "challenger", experiment="exp-0"),  # another experiment
            event("impression", "d", "challenger", source="price"),  # not a recommendation
            event("click", "e", "champion"),  # never shown an impression: not exposed
        ]
    )
    table = per_customer(events, "exp-1").set_index("customer_id")
    assert sorted(table.index) == ["a", "b"]
    assert table.loc["a", ["impressions", "clicks", "purchases", "revenue"]].tolist() == [2, 1, 1, 20.0]
    assert table.loc["b", ["variant", "revenue"]].tolist() == ["challenger", 5.0]


def synthetic(n: int, conversion: tuple[float, float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for variant, rate in zip(("champion", "challenger"), conversion, strict=True):
        bought = rng.random(n) < rate
        impressions = rng.integers(1, 20, n)
        rows.append(
            pd.DataFrame(
                {
                    "variant": variant,
                    "customer_id": [f"{variant}{i}" for i in range(n)],
                    "impressions": impressions,
                    "clicks": rng.binomial(impressions, 0.1),
                    "purchases": bought.astype(int),
                    "revenue": np.where(bought, rng.uniform(50, 150, n), 0.0),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_intervals_are_the_normal_ones_over_customers() -> None:
    table = synthetic(2000, (0.1, 0.1), seed=1)
    result = analyze(table, 14, ExperimentSettings())
    champion = table[table["variant"] == "champion"]
    p = (champion["purchases"] > 0).mean()
    conversion = result.variants[0].conversion
    assert conversion.value == pytest.approx(p)
    assert conversion.high - conversion.value == pytest.approx(
        Z90 * math.sqrt(p * (1 - p) / 1999 * 2000 / 2000), rel=1e-3
    )
    revenue = result.variants[0].revenue_per_customer
    assert revenue.value == pytest.approx(champion["revenue"].mean())
    assert revenue.se == pytest.approx(champion["revenue"].std() / math.sqrt(2000))
    ctr = result.variants[0].click_through
    assert ctr.value == pytest.approx(champion["clicks"].sum() / champion["impressions"].sum())
    assert result.variants[0].customers == 2000


def test_the_decision_promotes_a_clear_win_stops_a_loss_and_waits_with_days() -> None:
    settings = ExperimentSettings(minimum_effect=0.2)
    win = analyze(synthetic(4000, (0.10, 0.16), seed=2), 28, settings)
    assert win.decision.action == "promote", win.decision.reason
    assert win.decision.difference is not None
    assert win.decision.difference.low > 0
    loss = analyze(synthetic(4000, (0.16, 0.10), seed=3), 28, settings)
    assert loss.decision.action == "stop"
    assert "worse" in loss.decision.reason
    small = analyze(synthetic(150, (0.10, 0.10), seed=4), 10, settings)
    decision = small.decision
    assert decision.action == "keep running"
    assert decision.customers_needed is not None
    assert decision.customers_needed > 150
    # 150 challenger customers in 10 days: 15 a day, so the days still needed are
    assert decision.more_days == math.ceil((decision.customers_needed - 150) / 15)


def test_the_report_is_written_with_its_chart_and_evidence(tmp_path: Path) -> None:
    shop = ShopPaths(tmp_path / "shop")
    shop.logs.mkdir(parents=True)
    experiment = start_experiment("storewise-recommender", "1", "2", 0.5)
    table = synthetic(300, (0.1, 0.12), seed=5)
    lines = []
    for row in table.itertuples():
        for _ in range(int(row.impressions)):
            lines.append(event("impression", row.customer_id, row.variant, experiment=experiment.id))
        if row.purchases:
            lines.append(
                event("purchase", row.customer_id, row.variant, price=row.revenue, experiment=experiment.id)
            )
    (shop.logs / f"{FEEDBACK}.host-1.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    page, result = write_experiment_report(shop, experiment, ExperimentSettings())
    assert [summary.customers for summary in result.variants] == [300, 300]
    assert result.variants[1].revenue_per_customer.value == pytest.approx(
        table[table["variant"] == "challenger"]["revenue"].mean()
    )
    assert (page.parent / "experiment.png").stat().st_size > 5000
    assert (
        json.loads((page.parent / "result.json").read_text())["decision"]["action"] == result.decision.action
    )
    assert result.decision.action in page.read_text()


def test_a_plan_beyond_the_shops_customers_says_what_to_change_not_how_many_days() -> None:
    settings = ExperimentSettings(minimum_effect=0.2)
    table = synthetic(150, (0.10, 0.10), seed=4)
    planned = analyze(table, 10, settings).decision
    assert planned.customers_needed is not None
    assert planned.more_days is not None
    # the same figures, in a shop whose challenger can only ever reach fewer customers
    capped = analyze(table, 10, settings, reachable=planned.customers_needed - 1).decision
    assert capped.action == "keep running"
    assert capped.more_days is None
    assert (
        f"more than this shop can give the challenger (at most {planned.customers_needed - 1}"
        in capped.reason
    )
    assert "raise the share" in capped.reason
    enough = analyze(table, 10, settings, reachable=planned.customers_needed).decision
    assert enough.more_days == planned.more_days


def test_the_page_says_the_days_once_and_a_short_run_in_hours(tmp_path: Path) -> None:
    shop = ShopPaths(tmp_path / "shop")
    shop.logs.mkdir(parents=True)
    experiment = start_experiment("storewise-recommender", "1", "2", 0.5)
    lines = [
        event(kind, f"{variant}{i}", variant, price=10.0 + i, experiment=experiment.id)
        for variant in ("champion", "challenger")
        for i in range(30)
        for kind in (["impression", "purchase"] if i % 3 == 0 else ["impression"])
    ]
    started = pd.Timestamp(experiment.started_at)
    for minutes, line in enumerate(lines):
        line["at"] = (started + pd.Timedelta(minutes=minutes)).isoformat()
    (shop.logs / f"{FEEDBACK}.host-1.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    page, result = write_experiment_report(shop, experiment, ExperimentSettings())
    text = page.read_text()
    assert result.decision.action == "keep running"
    assert result.decision.more_days is not None
    assert text.count(f"about {result.decision.more_days} more days") == 1
    assert text.lower().count("more days") == 1
    assert f"({(len(lines) - 1) / 60:.1f} hours, running)" in text, text  # one event a minute
