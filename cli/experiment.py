"""`storewise experiment start | status | stop`, `storewise report experiment`, and the
experiment's side of `storewise promote --experiment` (storewise/experiments.py,
inference/experiments.py, reports/experiment.py, training/online_promotion.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from cli.common import MODEL_NAMES, ModelKind, ShopDir, fail, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths

app = typer.Typer(help="Online experiments: a challenger on live traffic, switchback price tests.")
Model = Annotated[
    ModelKind, typer.Option(help="recommender: champion against a challenger; pricing: a price test.")
]


def _model(model: ModelKind) -> str:
    return MODEL_NAMES[ModelKind(model)]


@app.command("start")
def start(
    model: Model = ModelKind.RECOMMENDER,
    challenger: Annotated[str | None, typer.Option(help="recommender: the version to test.")] = None,
    share: Annotated[float, typer.Option(help="recommender: the share of customers it answers.")] = 0.2,
    items: Annotated[str | None, typer.Option(help="pricing: item ids to test, comma-separated.")] = None,
    step: Annotated[float | None, typer.Option(help="pricing: each arm's move (default: config).")] = None,
    days: Annotated[int | None, typer.Option(help="pricing: how many days (default: config).")] = None,
    start_date: Annotated[
        str | None, typer.Option("--start", help="pricing: first day (default: today).")
    ] = None,
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
) -> None:
    """Start an experiment: the service follows it within its reload interval."""
    from inference.experiments import read_experiment
    from inference.registry import champion_version, configure, tracking_uri

    name = _model(model)
    client = configure()
    if name == MODEL_NAMES[ModelKind.RECOMMENDER]:
        running = read_experiment(client, name)
        if running is not None and running.running:
            fail(f"experiment {running.id} is running (challenger v{running.challenger}); stop it first")
        _start_recommender(client, name, challenger, share, champion_version(client, name))
    else:
        _start_price_test(client, name, items, step, days, start_date, ShopPaths(shop_dir))
    say(f"wrote it in {tracking_uri()}; the service picks it up within its --reload-seconds")


def _start_recommender(
    client: object, name: str, challenger: str | None, share: float, champion: str | None
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from inference.experiments import write_experiment
    from storewise.experiments import start_experiment

    assert isinstance(client, MlflowClient)
    if challenger is None:
        fail("--challenger: name the version to test (storewise promote lists none; see the MLflow UI)")
    if champion is None:
        fail(f"'{name}' has no champion to compare with: promote one first")
    try:
        client.get_model_version(name, challenger)
    except MlflowException:
        fail(f"--challenger: '{name}' has no version {challenger}")
    experiment = start_experiment(name, champion, challenger, share)
    write_experiment(client, experiment)
    say(
        f"started experiment {experiment.id}: challenger v{challenger} answers {share:.0%} of the customers "
        f"champion v{champion} personalizes for (guests and customers without consent stay on the champion)"
    )


def _start_price_test(
    client: object,
    name: str,
    items: str | None,
    step: float | None,
    days: int | None,
    first: str | None,
    shop: ShopPaths,
) -> None:
    from mlflow import MlflowClient

    from inference.experiments import read_price_test, write_price_test
    from inference.registry import champion_version
    from intake.tables import read_table
    from storewise import columns as c
    from storewise.config import CONFIG_DIR
    from storewise.experiments import start_price_test
    from storewise.settings import load_experiment_settings, load_pricing_settings

    assert isinstance(client, MlflowClient)
    settings = load_experiment_settings(CONFIG_DIR)
    wanted = [item.strip() for item in (items or "").split(",") if item.strip()]
    products = read_table(shop, c.PRODUCTS)
    known = set(products[c.ITEM_ID].astype(str)) if products is not None else set()
    unknown = [item for item in wanted if item not in known]
    if unknown:
        fail(f"--items: not in {shop.table(c.PRODUCTS)}: {', '.join(unknown[:10])}")
    if champion_version(client, name) is None:
        fail(f"'{name}' has no champion: a price test moves the champion's prices")
    running = read_price_test(client, name)
    if running is not None and running.status == "running":
        fail(f"price test {running.id} is running; stop it first")
    try:
        day = date.fromisoformat(first) if first else datetime.now(ZoneInfo(shop.settings().timezone)).date()
    except ValueError:
        fail(f"--start: '{first}' is not a date (YYYY-MM-DD)")
    test = start_price_test(
        wanted,
        step if step is not None else settings.price_step,
        day,
        days if days is not None else settings.price_days,
        load_pricing_settings(CONFIG_DIR).guardrails.max_daily_change,
    )
    write_price_test(client, name, test)
    say(
        f"started price test {test.id}: {len(test.items)} item(s) at their base price -{test.step:.1%} or "
        f"+{test.step:.1%}, the arm drawn per item and day (the same for every customer), {test.start} to {test.end}"
    )


@app.command("status")
def status(model: Model = ModelKind.RECOMMENDER) -> None:
    """The model's latest experiment or price test, running or stopped."""
    from inference.experiments import read_experiment, read_price_test
    from inference.registry import configure

    name = _model(model)
    client = configure()
    record = read_experiment(client, name) if model == "recommender" else read_price_test(client, name)
    if record is None:
        say(f"no experiment on '{name}'")
        return
    say(record.to_json())


@app.command("stop")
def stop(model: Model = ModelKind.RECOMMENDER) -> None:
    """Stop the running experiment: everyone gets the champion (the base price) again."""
    from inference.experiments import read_experiment, read_price_test, write_experiment, write_price_test
    from inference.registry import configure, tracking_uri

    name = _model(model)
    client = configure()
    if model == "recommender":
        experiment = read_experiment(client, name)
        if experiment is None or not experiment.running:
            fail(f"no experiment is running on '{name}'")
        write_experiment(client, experiment.stopped())
        say(f"stopped experiment {experiment.id}; `storewise report experiment` still reports it")
    else:
        test = read_price_test(client, name)
        if test is None or test.status != "running":
            fail(f"no price test is running on '{name}'")
        write_price_test(client, name, test.stopped())
        say(f"stopped price test {test.id}")
    say(f"wrote it in {tracking_uri()}")


def report_experiment(shop_dir: ShopDir = DEFAULT_SHOP_DIR) -> None:
    """Champion against challenger per variant: customers, impressions, click-through,
    conversion and revenue per customer with intervals, and the decision."""
    from reports.experiment import write_experiment_report
    from storewise.config import CONFIG_DIR
    from storewise.settings import load_experiment_settings
    from training.online_promotion import current_experiment

    experiment = current_experiment(MODEL_NAMES[ModelKind.RECOMMENDER])
    page, result = write_experiment_report(
        ShopPaths(shop_dir), experiment, load_experiment_settings(CONFIG_DIR)
    )
    for summary in result.variants:
        say(
            f"{summary.variant}: {summary.customers} customers, {summary.impressions} impressions, "
            f"click-through {summary.click_through.value:.4f}, conversion {summary.conversion.value:.4f}, "
            f"revenue per customer {summary.revenue_per_customer.value:.2f} "
            f"({summary.revenue_per_customer.low:.2f} to {summary.revenue_per_customer.high:.2f})"
        )
    say(f"decision: {result.decision.action}: {result.decision.reason}")
    say(f"wrote {page} and the CSV and JSON beside it")


def promote_on_experiment(version: str | None, shop_dir: ShopPaths) -> None:
    """`storewise promote --experiment`: the experiment's report is the evidence."""
    from reports.experiment import write_experiment_report
    from storewise.config import CONFIG_DIR
    from storewise.settings import load_experiment_settings
    from training.online_promotion import current_experiment, promote_on_evidence

    experiment = current_experiment(MODEL_NAMES[ModelKind.RECOMMENDER])
    page, result = write_experiment_report(shop_dir, experiment, load_experiment_settings(CONFIG_DIR))
    decision = promote_on_evidence(experiment, result.to_dict(), version)
    if not decision.promoted:
        say(f"not promoted: version {decision.version} {decision.reason} (report: {page})")
        raise typer.Exit(1)
    say(f"promoted version {decision.version} to champion: {decision.reason}")
    say(f"recorded the experiment's result on the version (tag promotion.evidence); report: {page}")


def register(root: typer.Typer, report_app: typer.Typer) -> None:
    root.add_typer(app, name="experiment")
    report_app.command("experiment")(report_experiment)
