"""`storewise train recommender | pricing`, `evaluate` and `simulate`: fit, judge and register
the models (training/)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import ShopDir, fail, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths

if TYPE_CHECKING:
    from training.recommender.outcome import TrainOutcome

app = typer.Typer(help="Train models and register them in MLflow.", no_args_is_help=True)


TestDays = Annotated[
    int | None, typer.Option(min=1, help="Override evaluation.test_days (the held-out last days).")
]
ValidationDays = Annotated[int | None, typer.Option(min=1, help="Override evaluation.validation_days.")]
ValidationFolds = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=8,
        help="Override evaluation.validation_folds (fewer folds: faster, the blend tuned on fewer "
        "customers; `make demo` uses 2).",
    ),
]


def _evaluation_overrides(
    test_days: int | None, validation_days: int | None, validation_folds: int | None = None
) -> dict[str, int]:
    given = {"test_days": test_days, "validation_days": validation_days, "validation_folds": validation_folds}
    return {key: value for key, value in given.items() if value is not None}


def _print_answers(outcome: TrainOutcome) -> None:
    """What answers each protocol and why: the folds' reranker decision, then any protocol
    the test weeks gave to one component alone."""
    for protocol, rerank in outcome.rerank.items():
        folds = ", ".join(f"{blend:.4f} -> {trees:.4f}" for blend, trees in rerank.folds)
        say(
            f"  {protocol} answered by the {rerank.describe()}"
            + (f" (held-out folds, blend -> trees: {folds})" if folds else "")
            + ("; replaced on the test weeks, below" if protocol in outcome.fallbacks else "")
        )
    for protocol, fallback in outcome.fallbacks.items():
        say(f"  {protocol} answered, from the test weeks on, by {fallback.describe()}")


def _print_comparison(outcome: object) -> None:
    from training.recommender.outcome import TrainOutcome
    from training.recommender.uncertainty import describe_gains

    assert isinstance(outcome, TrainOutcome)
    table = outcome.comparison
    intervals = outcome.intervals.set_index(["protocol", "model"]) if len(outcome.intervals) else None
    for protocol in ("discovery", "all_purchases", "business_rules"):
        rows = table[(table["protocol"] == protocol) & (table["metric"] == "ndcg") & (table["k"] == 10)]
        rows = rows.sort_values("value", ascending=False)
        marker = " (primary)" if protocol == outcome.primary_protocol else ""
        say(
            f"  NDCG@10 on the test weeks, {protocol}{marker} (hybrid minus the model, 90% paired bootstrap):"
        )
        for row in rows.itertuples():
            gap = ""
            if intervals is not None and (protocol, row.model) in intervals.index:
                mean, low, high = intervals.loc[(protocol, row.model), ["mean", "low", "high"]]
                gap = (
                    f"  {mean:+.4f} [{low:+.4f}, {high:+.4f}]{'' if low > 0 or high < 0 else ' within noise'}"
                )
            say(f"    {row.model:<22} {row.value:.4f}{gap}")
        recall = table[(table["protocol"] == protocol) & (table["model"] == "hybrid")].set_index("metric")[
            "value"
        ]
        split = [
            f"{kind} items {recall[f'{kind}_recall']:.4f}"
            for kind in ("repeat", "new")
            if f"{kind}_recall" in recall
        ]
        if split:
            say(f"    hybrid recall@10 on {', on '.join(split)}")
    if "lightfm" not in set(table["model"]):
        say("  lightfm alone: not fitted on the test weeks (no blend uses it)")
    if outcome.lightfm_screen:
        gains = describe_gains(outcome.lightfm_screen)
        say(f"  lightfm on the latest fold (its blend minus the blend without it, 90%): {gains}")
    if outcome.lightfm_confirmation is not None:
        say(
            "  lightfm on the latest two folds (the same, pooled): "
            + (
                describe_gains(outcome.lightfm_confirmation)
                or "no blend keeps it (left out of the run's blends)"
            )
        )
    _print_answers(outcome)
    if outcome.unlaunched_items:
        say(
            f"  test weeks: {outcome.unlaunched_items} catalogue items first seen after their start left out "
            "(not launched yet: no model could offer them, and they are no one's truth)"
        )


@app.command("recommender")
def train_recommender_command(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    search: Annotated[
        bool, typer.Option("--search", help="Also try the LightFM settings in config search:, as child runs.")
    ] = False,
    test_days: TestDays = None,
    validation_days: ValidationDays = None,
    validation_folds: ValidationFolds = None,
) -> None:
    """Tune, compare against baselines and peers, refit, log to MLflow and register."""
    from training.tracking_process import recommender_tracking

    # started first: it imports MLflow while this process imports the trainer's modules
    with recommender_tracking() as tracking:
        from training.recommender.train import train_recommender

        outcome = train_recommender(
            ShopPaths(shop_dir),
            search=search,
            evaluation=_evaluation_overrides(test_days, validation_days, validation_folds),
            tracking=tracking,
        )
    _print_comparison(outcome)
    say(
        f"  time: {outcome.seconds['total']} s ({', '.join(f'{k} {v}' for k, v in outcome.seconds.items() if k != 'total')})"
    )
    say(
        f"wrote run {outcome.run_id} and registered storewise-recommender version {outcome.version} in {outcome.tracking_uri}"
    )
    say(f"next: storewise promote --model recommender --version {outcome.version}")


def evaluate_command(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR, test_days: TestDays = None, validation_days: ValidationDays = None
) -> None:
    """The recommender's side-by-side comparison on the test weeks, without logging or registering."""
    from training.recommender.train import train_recommender

    outcome = train_recommender(
        ShopPaths(shop_dir), register=False, evaluation=_evaluation_overrides(test_days, validation_days)
    )
    _print_comparison(outcome)
    say("wrote nothing (evaluate does not log; `train recommender` does)")


@app.command("pricing")
def train_pricing_command(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    forecast_days: Annotated[
        int | None,
        typer.Option(
            min=7,
            help="Imported shops: fit on all but the last N days and forecast them at the prices "
            "charged (overrides evaluation.forecast_days).",
        ),
    ] = None,
) -> None:
    """Fit elasticities, judge the pricing policy (simulator or forecast), log and register."""
    from inference.registry import tracking_uri
    from storewise.columns import DEMAND_SHAPE
    from training.pricing.train import train_pricing

    outcome = train_pricing(ShopPaths(shop_dir), forecast_days=forecast_days)
    m = outcome.metrics
    say(
        f"  items: {m['items']:.0f}, with enough price history of their own: {m['items_with_own_evidence']:.0f}"
    )
    shape = outcome.elasticities.attrs.get("findings", {}).get(DEMAND_SHAPE)
    if shape is not None:
        say(f"  {shape.reason}")
    if "elasticity_mae" in m:
        _print_simulation(m)
    elif outcome.products is not None:
        _print_panel(outcome)
    else:
        _print_item_forecast(m)
    say(f"  time: fit {outcome.seconds.get('fit', 0):.1f} s, total {outcome.seconds['total']:.1f} s")
    say(
        f"wrote run {outcome.run_id} and registered storewise-pricing version {outcome.version} in {tracking_uri()}"
    )
    say(f"next: storewise promote --model pricing --version {outcome.version}")


def _print_simulation(m: dict[str, float]) -> None:
    say(
        f"  elasticity vs the demo shop's truth ({m['elasticity_items_enough_variation']:.0f} items with enough price variation): "
        f"MAE {m['elasticity_mae']:.3f}, 90% intervals cover {m['elasticity_coverage_90']:.0%}"
    )
    for policy in ("fixed", "optimizer", "oracle"):
        say(
            f"  simulated profit, {policy:<9}: {m[f'simulation.{policy}.profit_mean']:,.0f} "
            f"({m[f'simulation.{policy}.share_of_oracle_mean']:.1%} of the oracle, sd {m[f'simulation.{policy}.share_of_oracle_sd']:.1%}, "
            f"max {m[f'simulation.{policy}.share_of_oracle_max']:.1%}; regret {m[f'simulation.{policy}.regret_mean']:,.0f}, "
            f"holding cost {m[f'simulation.{policy}.holding_cost_mean']:,.0f})"
        )
    gain = "simulation.optimizer_minus_fixed_share"
    if gain in m:
        say(
            f"  optimizer - fixed price: {m[gain]:+.1%} of the oracle's profit (90% paired bootstrap over items: "
            f"{m[gain + '_low']:+.1%} to {m[gain + '_high']:+.1%})"
        )


def _print_item_forecast(m: dict[str, float]) -> None:
    say(
        f"  forecast of the last {m['forecast.forecast_days']:.0f} days: WAPE model {m['forecast.wape_model']:.3f}, "
        f"without price {m['forecast.wape_no_price']:.3f}, mean of 28 days {m['forecast.wape_mean_28_days']:.3f}, "
        f"same weekday last week {m['forecast.wape_same_weekday_last_week']:.3f}; bias {m['forecast.bias_model']:+.1%}"
    )
    say(
        f"  negative elasticities: {m['forecast.share_negative_elasticity']:.0%} of {m['forecast.items_with_price_variation']:.0f} "
        f"items with price variation (median {m['forecast.elasticity_q50']:.2f})"
    )


def _print_panel(outcome: object) -> None:
    from training.pricing.train import PricingOutcome

    assert isinstance(outcome, PricingOutcome)
    assert outcome.products is not None
    m = outcome.metrics
    say(
        f"  forecast of the last {m['forecast.forecast_days']:.0f} days ({m['forecast.forecast_periods']:.0f} periods, "
        f"{m['forecast.forecast_series']:.0f} series, 90% intervals over series):"
    )
    forecasts = [
        key[len("forecast.wape_") :] for key in m if key.startswith("forecast.wape_") and key.count(".") == 1
    ]
    for name in [
        name for name in forecasts if not name.startswith("model_") and not name.endswith(("_low", "_high"))
    ]:
        low, high = m[f"forecast.wape_{name}_low"], m[f"forecast.wape_{name}_high"]
        say(f"    WAPE {name:<16} {m[f'forecast.wape_{name}']:.3f} ({low:.3f} to {high:.3f})")
    low, high = m["forecast.wape_model_over_no_price_low"], m["forecast.wape_model_over_no_price_high"]
    say(f"    model / no price   {m['forecast.wape_model_over_no_price']:.3f} ({low:.3f} to {high:.3f})")
    say("  own-price elasticity by product (pooled over stores, 90% interval):")
    for row in outcome.products.itertuples(index=False):
        say(
            f"    {row.product:<12} {row.elasticity:6.2f} ({row.elasticity_low_90:.2f} to {row.elasticity_high_90:.2f})"
        )
    if outcome.cross is not None:
        say(f"  cross-price effects: {outcome.cross.reason}")


def simulate_command(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    days: Annotated[int, typer.Option(min=1, max=730, help="Days to simulate after the history.")] = 60,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "1,2,3",
) -> None:
    """Run the champion pricing policy (the registered model as it is, not refitted), the fixed list price and the oracle on the demo shop's true demand."""
    from training.pricing.train import simulate_with_champion

    try:
        seed_list = tuple(int(seed) for seed in seeds.split(","))
    except ValueError:
        fail(f"--seeds must be whole numbers separated by commas, got '{seeds}'")
    summary, metrics = simulate_with_champion(ShopPaths(shop_dir), days, seed_list)
    table = summary.groupby("policy")[
        ["profit", "revenue", "units", "stockout_item_days", "leftover_stock_units", "profit_share_of_oracle"]
    ].mean()
    for policy, row in table.iterrows():
        say(
            f"  {policy:<9} profit {row['profit']:>12,.0f}  revenue {row['revenue']:>12,.0f}  units {row['units']:>8,.0f}  "
            f"stock-out item-days {row['stockout_item_days']:>6,.0f}  leftover {row['leftover_stock_units']:>7,.0f}  "
            f"{row['profit_share_of_oracle']:.1%} of oracle"
        )
    say(f"wrote run {metrics['run_id']} in the storewise-pricing experiment")


def register(root: typer.Typer) -> None:
    """The verbs of this step that sit at the top level."""
    root.command("evaluate")(evaluate_command)
    root.command("simulate")(simulate_command)
