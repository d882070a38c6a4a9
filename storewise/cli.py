"""The `storewise` command line: one entry point, verbs grouped by step.

Every verb takes `--shop-dir` (default `data/demo`) and says where it wrote. A problem
with the user's input is one line on stderr naming the file, row and column, and exit
code 2; never a traceback.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from features.demo.generate import GeneratorSettings
from storewise.errors import EXIT_USAGE, StorewiseError
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths

app = typer.Typer(
    help="Storewise: recommendations and dynamic pricing for online shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Shop data: generate the demo shop, import exports, check a shop.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
features_app = typer.Typer(
    help="Feature pipelines: interactions, RFM, journey, clusters, demand.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
train_app = typer.Typer(help="Train models and register them in MLflow.", no_args_is_help=True)
app.add_typer(train_app, name="train")
report_app = typer.Typer(help="Reports for the people around the service.", no_args_is_help=True)
app.add_typer(report_app, name="report")

DEMO = GeneratorSettings()
ShopDir = Annotated[Path, typer.Option("--shop-dir", help="The shop's directory.", file_okay=False)]


def say(message: str) -> None:
    typer.echo(message)


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


@data_app.command("generate")
def data_generate(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = DEMO.customers,
    products: Annotated[int, typer.Option(min=1, help="Number of products.")] = DEMO.products,
    days: Annotated[int, typer.Option(min=28, help="Days of history.")] = DEMO.days,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same shop.")] = DEMO.seed,
    end_date: Annotated[str, typer.Option(help="Last day of the history (YYYY-MM-DD).")] = DEMO.end_date,
) -> None:
    """Generate the demo jewellery shop (deterministic for a seed)."""
    from tqdm import tqdm

    from features.demo.generate import generate_shop
    from features.demo.writer import write_generated_shop

    options = GeneratorSettings(
        customers=customers, products=products, days=days, seed=seed, end_date=end_date
    )
    shop = ShopPaths(shop_dir)
    with tqdm(total=days, desc="simulating days", unit="day", file=sys.stderr, mininterval=0.5) as bar:
        generated = generate_shop(options, progress=bar.update)
    write_generated_shop(shop, generated)
    for name, table in generated.tables.items():
        say(f"  {name:<14} {len(table):>10,} rows")
    say(f"wrote {shop.raw} (canonical tables), {shop.ground_truth} (true demand, for the simulator only)")


@data_app.command("import")
def data_import(
    path: Annotated[Path, typer.Argument(help="The export: a file, or a directory of canonical tables.")],
    format: Annotated[str, typer.Option("--format", help="online-retail or canonical.")],
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    consent: Annotated[
        str,
        typer.Option(
            help="Consent to assume for customers the export has no consent for: none, personalization "
            "(not marketing) or all. Invoice exports carry none."
        ),
    ] = "personalization",
    timezone: Annotated[
        str | None,
        typer.Option(
            help="The shop's time zone (default: Europe/London for "
            "online-retail, Asia/Kuala_Lumpur for canonical)."
        ),
    ] = None,
    currency: Annotated[
        str | None,
        typer.Option(help="The shop's currency (default: GBP for online-retail, RM for canonical)."),
    ] = None,
) -> None:
    """Import a shop's export into canonical tables, with a report of every row set aside."""
    from features.importers.common import Consent, write_import
    from features.importers.online_retail import import_online_retail

    formats = ("online-retail", "canonical")
    if format not in formats:
        fail(f"unknown --format '{format}'; use one of: {', '.join(formats)}")
    try:
        assumed = Consent(consent)
    except ValueError:
        fail(f"unknown --consent '{consent}'; use one of: {', '.join(item.value for item in Consent)}")
    shop = ShopPaths(shop_dir)
    if format == "online-retail":
        result = import_online_retail(
            path, consent=assumed, timezone=timezone or "Europe/London", currency=currency or "GBP"
        )
    else:
        from features.importers.canonical import import_canonical

        result = import_canonical(
            path,
            consent=assumed,
            timezone=timezone or "Asia/Kuala_Lumpur",
            currency=currency or "RM",
        )
    write_import(shop, result)
    for key, value in result.summary.items():
        if isinstance(value, dict):
            say(f"  {key}:")
            for sub_key, sub_value in value.items():
                say(
                    f"    {sub_key}: {sub_value:,}"
                    if isinstance(sub_value, int)
                    else f"    {sub_key}: {sub_value}"
                )
        else:
            say(f"  {key}: {value:,}" if isinstance(value, int) else f"  {key}: {value}")
    for note in result.notes:
        say(f"note: {note}")
    say(
        f"wrote {shop.raw} (canonical tables), {shop.import_report} (one line per row not imported as is), "
        f"{shop.import_summary}"
    )


@data_app.command("check")
def data_check(shop_dir: ShopDir = DEFAULT_SHOP_DIR) -> None:
    """Validate a shop's tables against the canonical schemas and summarize them."""
    from features.check import check_tables
    from features.tables import read_tables

    shop = ShopPaths(shop_dir)
    settings = shop.settings()
    tables = read_tables(shop)
    report = check_tables(tables, settings.tz)
    say(f"shop {settings.name} ({settings.source}, {settings.currency}, {settings.timezone}) at {shop.root}")
    for key, value in report.summary.items():
        say(f"  {key}: {value:,}" if isinstance(value, int) else f"  {key}: {value}")
    for problem in report.problems:
        say(f"  {problem}")
    if not report.ok:
        fail(f"{len(report.errors)} problem(s) in {shop.raw}; fix the data or re-import")
    say(f"ok: {shop.raw} holds valid canonical tables (wrote nothing)")


@features_app.command("build")
def features_build(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when the inputs have not changed.")
    ] = False,
) -> None:
    """Build every feature output of a shop under <shop>/features/, with a manifest."""
    from features.pipeline import build_features

    shop = ShopPaths(shop_dir)
    result = build_features(shop, force=force)
    manifest = result.manifest
    if not result.rebuilt:
        say(
            f"features are up to date (input hash {str(manifest['input_hash'])[:12]}, built {manifest['built_at']}); "
            "nothing rebuilt (use --force to rebuild)"
        )
        return
    counts = manifest["row_counts"]
    assert isinstance(counts, dict)
    for name, rows in counts.items():
        say(f"  {name:<28} {rows:>10,} rows")
    for note in result.notes:
        say(f"note: {note}")
    say(
        f"wrote {shop.features} in {manifest['build_seconds']} s (input hash {str(manifest['input_hash'])[:12]})"
    )


TestDays = Annotated[
    int | None, typer.Option(min=1, help="Override evaluation.test_days (the held-out last days).")
]
ValidationDays = Annotated[int | None, typer.Option(min=1, help="Override evaluation.validation_days.")]


def _evaluation_overrides(test_days: int | None, validation_days: int | None) -> dict[str, int]:
    overrides = {}
    if test_days is not None:
        overrides["test_days"] = test_days
    if validation_days is not None:
        overrides["validation_days"] = validation_days
    return overrides


def _print_comparison(outcome: object) -> None:
    from training.recommender.train import TrainOutcome

    assert isinstance(outcome, TrainOutcome)
    table = outcome.comparison
    for protocol in ("discovery", "all_purchases", "business_rules"):
        rows = table[(table["protocol"] == protocol) & (table["metric"] == "ndcg") & (table["k"] == 10)]
        rows = rows.sort_values("value", ascending=False)
        marker = " (primary)" if protocol == outcome.primary_protocol else ""
        say(f"  NDCG@10 on the test weeks, {protocol}{marker}:")
        for row in rows.itertuples():
            say(f"    {row.model:<22} {row.value:.4f}")


@train_app.command("recommender")
def train_recommender_command(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    search: Annotated[
        bool, typer.Option("--search", help="Also try the LightFM settings in config search:, as child runs.")
    ] = False,
    test_days: TestDays = None,
    validation_days: ValidationDays = None,
) -> None:
    """Tune, compare against baselines and peers, refit, log to MLflow and register."""
    from training.recommender.train import train_recommender
    from training.tracking import tracking_uri

    outcome = train_recommender(
        ShopPaths(shop_dir), search=search, evaluation=_evaluation_overrides(test_days, validation_days)
    )
    _print_comparison(outcome)
    say(f"  time: {outcome.seconds['total']} s")
    say(
        f"wrote run {outcome.run_id} and registered storewise-recommender version {outcome.version} in {tracking_uri()}"
    )
    say(f"next: storewise promote --model recommender --version {outcome.version}")


@app.command("evaluate")
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


MODEL_NAMES = {"recommender": "storewise-recommender", "pricing": "storewise-pricing"}


@app.command("promote")
def promote_command(
    model: Annotated[str, typer.Option(help="recommender or pricing.")] = "recommender",
    version: Annotated[str | None, typer.Option(help="The version to promote (default: the newest).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Skip the gate (recorded as a tag on the version).")
    ] = False,
) -> None:
    """Give a registered version the champion alias, if it passes the promotion gate."""
    from training.registry import promote
    from training.tracking import tracking_uri

    if model not in MODEL_NAMES:
        fail(f"unknown --model '{model}'; use one of: {', '.join(MODEL_NAMES)}")
    decision = promote(MODEL_NAMES[model], version, force=force)
    if decision.promoted:
        say(f"promoted {MODEL_NAMES[model]} version {decision.version} to champion: {decision.reason}")
        say(f"wrote the alias in {tracking_uri()}")
    else:
        say(f"not promoted: {MODEL_NAMES[model]} version {decision.version} {decision.reason}")
        say(f"the champion stays version {decision.previous} (wrote nothing)")
        raise typer.Exit(1)


@app.command("compare")
def compare_command(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more MLflow run ids.")],
    out: Annotated[Path, typer.Option(help="The HTML report to write.")] = Path("reports/comparison.html"),
) -> None:
    """A side-by-side HTML report of runs: params that differ, metrics with baselines, a chart."""
    from training.registry import compare

    if len(run_ids) < 2:
        fail("compare needs at least two run ids")
    path = compare(run_ids, out)
    say(f"wrote {path} and {path.with_suffix('.csv')}")


@app.command("recommend")
def recommend_command(
    customers: Annotated[Path, typer.Option(help="A file of customer ids, one per line.")],
    out: Annotated[Path, typer.Option(help="The CSV to write: customer_id,item_id,rank,score,reason.")],
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    k: Annotated[int, typer.Option(min=1, max=1000, help="Items per customer.")] = 10,
    include_purchased: Annotated[
        bool,
        typer.Option(
            "--include-purchased",
            help="Let items the customer bought come back (shops where customers rebuy).",
        ),
    ] = False,
    model_uri: Annotated[
        str, typer.Option(help="The model to use.")
    ] = "models:/storewise-recommender@champion",
) -> None:
    """Batch top-k recommendations from the champion for a file of customer ids."""
    import time

    from training.recommender.batch import load_recommendations, read_customer_ids
    from training.recommender.pyfunc import batch_top_k

    ids = read_customer_ids(customers)
    started = time.perf_counter()
    recommendations = load_recommendations(model_uri)
    loaded = time.perf_counter()
    purchased: Literal["include", "exclude"] = "include" if include_purchased else "exclude"
    table = batch_top_k(recommendations, ids, [k] * len(ids), purchased=purchased)
    elapsed = time.perf_counter() - loaded
    out.parent.mkdir(parents=True, exist_ok=True)
    table.drop(columns=["source"]).to_csv(out, index=False)
    personal = int(table.drop_duplicates("customer_id")["source"].eq("personalized").sum())
    say(f"  {len(ids):,} customers ({personal:,} personalized, the rest non-personalized), {len(table):,} rows, "
        f"{len(ids) / max(elapsed, 1e-9):,.0f} customers/s after loading the model in {loaded - started:.1f} s")  # fmt: skip
    say(f"wrote {out} (shop {shop_dir})")


@train_app.command("pricing")
def train_pricing_command(shop_dir: ShopDir = DEFAULT_SHOP_DIR) -> None:
    """Fit elasticities, judge the pricing policy (simulator or forecast), log and register."""
    from training.pricing.train import train_pricing
    from training.tracking import tracking_uri

    outcome = train_pricing(ShopPaths(shop_dir))
    m = outcome.metrics
    say(
        f"  items: {m['items']:.0f}, with enough price history of their own: {m['items_with_own_evidence']:.0f}"
    )
    if "elasticity_mae" in m:
        say(f"  elasticity vs the demo shop's truth ({m['elasticity_items_enough_variation']:.0f} items with enough price variation): "
            f"MAE {m['elasticity_mae']:.3f}, 90% intervals cover {m['elasticity_coverage_90']:.0%}")  # fmt: skip
        for policy in ("fixed", "optimizer", "oracle"):
            say(f"  simulated profit, {policy:<9}: {m[f'simulation.{policy}.profit_mean']:,.0f} "
                f"({m[f'simulation.{policy}.share_of_oracle_mean']:.1%} of the oracle, sd {m[f'simulation.{policy}.share_of_oracle_sd']:.1%})")  # fmt: skip
    else:
        say(f"  forecast of the last {m['forecast.forecast_days']:.0f} days: WAPE model {m['forecast.wape_model']:.3f}, "
            f"mean of 28 days {m['forecast.wape_mean_28_days']:.3f}, same weekday last week {m['forecast.wape_same_weekday_last_week']:.3f}; "
            f"bias {m['forecast.bias_model']:+.1%}")  # fmt: skip
        say(f"  negative elasticities: {m['forecast.share_negative_elasticity']:.0%} of {m['forecast.items_with_price_variation']:.0f} "
            f"items with price variation (median {m['forecast.elasticity_q50']:.2f})")  # fmt: skip
    say(
        f"wrote run {outcome.run_id} and registered storewise-pricing version {outcome.version} in {tracking_uri()}"
    )
    say(f"next: storewise promote --model pricing --version {outcome.version}")


@app.command("simulate")
def simulate_command(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    days: Annotated[int, typer.Option(min=1, max=730, help="Days to simulate after the history.")] = 60,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "1,2,3",
) -> None:
    """Run the champion pricing policy, the fixed list price and the oracle on the demo shop's true demand."""
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
        say(f"  {policy:<9} profit {row['profit']:>12,.0f}  revenue {row['revenue']:>12,.0f}  units {row['units']:>8,.0f}  "
            f"stock-out item-days {row['stockout_item_days']:>6,.0f}  leftover {row['leftover_stock_units']:>7,.0f}  "
            f"{row['profit_share_of_oracle']:.1%} of oracle")  # fmt: skip
    say(f"wrote run {metrics['run_id']} in the storewise-pricing experiment")


@app.command("serve")
def serve_command(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    host: Annotated[
        str, typer.Option(help="Address to bind (localhost by default; 0.0.0.0 to expose it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 3000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 2,
    reload_seconds: Annotated[
        float, typer.Option(min=1, help="How often workers check for a new champion.")
    ] = 15,
) -> None:
    """Serve the champion models over HTTP (BentoML): recommend, similar, price, quote, feedback."""
    import os
    import subprocess

    from training.tracking import tracking_uri

    shop = ShopPaths(shop_dir)
    shop.settings()  # fail now, with the file named, rather than in every worker
    env = {**os.environ, "STOREWISE_SHOP_DIR": str(shop.root.resolve()), "STOREWISE_WORKERS": str(workers),
           "STOREWISE_RELOAD_SECONDS": str(reload_seconds), "MLFLOW_TRACKING_URI": tracking_uri(), "OMP_NUM_THREADS": "1"}  # fmt: skip
    say(f"serving {shop.root} on http://{host}:{port} (OpenAPI at /docs.json); logs in {shop.logs}")
    # bentoml beside this interpreter: `.venv/bin/storewise serve` works without an activated venv
    beside = Path(sys.executable).parent / "bentoml"
    bentoml = str(beside) if beside.exists() else shutil.which("bentoml")
    if bentoml is None:
        fail("the bentoml command was not found beside this Python nor on PATH; run `make install`")
    command = [str(bentoml), "serve", "serving.service:Storewise", "--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(command, env=env))


@report_app.command("segments")
def report_segments(shop_dir: ShopDir = DEFAULT_SHOP_DIR) -> None:
    """RFM segments, the journey funnel and behavioural clusters: HTML with charts, and CSVs."""
    from features.reports import write_segment_report

    page = write_segment_report(ShopPaths(shop_dir))
    say(f"wrote {page} (open it in a browser) and the CSV exports beside it")


@report_app.command("feedback")
def report_feedback(shop_dir: ShopDir = DEFAULT_SHOP_DIR) -> None:
    """Click-through, conversion and revenue per recommendation source and per price change."""
    from features.uplift import write_feedback_report

    page = write_feedback_report(ShopPaths(shop_dir))
    say(f"wrote {page} and the CSVs beside it")


@app.command("audience")
def audience_command(
    item: Annotated[str | None, typer.Option("--item", help="An item id.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="A category.")] = None,
    size: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many customers.")] = 1000,
    out: Annotated[
        Path | None, typer.Option(help="The CSV to write (default <shop>/reports/audience-<target>.csv).")
    ] = None,
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    model_uri: Annotated[
        str, typer.Option(help="The recommender to use.")
    ] = "models:/storewise-recommender@champion",
) -> None:
    """The customers most likely to want an item or a category, among those who agreed to marketing."""
    from training.recommender.batch import load_recommendations

    if (item is None) == (category is None):
        fail("give exactly one of --item or --category")
    recommendations = load_recommendations(model_uri)
    if item is not None and not recommendations.knows_item(item):
        fail(f"unknown item '{item}'")
    if category is not None and category not in set(recommendations.categories):
        fail(
            f"unknown category '{category}'; the shop has: {', '.join(sorted(set(recommendations.categories)))}"
        )
    table, excluded = recommendations.audience(item_id=item, category=category, size=size)
    if table.empty:
        fail("no customer with marketing consent can be scored for this target (the audience is empty)")
    target = item or category
    path = out or ShopPaths(shop_dir).root / "reports" / f"audience-{str(target).replace(' ', '_')}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    say(f"  {len(table):,} customers with marketing consent; {excluded:,} left out for lack of consent")
    say(f"wrote {path}")


@app.command("erase")
def erase_command(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
) -> None:
    """Remove a customer from the shop's data, features, logs and reports, and from what the service answers."""
    from features.erasure import ERASURES, erase_customer
    from training.recommender.recommend import normalize_customer_id

    shop = ShopPaths(shop_dir)
    counts = erase_customer(shop, normalize_customer_id(customer_id))
    for key, value in counts.items():
        say(f"  {key}: {value}")
    say(
        f"wrote {shop.raw}, {shop.features}, {shop.logs} and an erasure record (a salted hash, not the id) in {shop.root / ERASURES}"
    )
    say("the service stops personalizing for this customer at once; the next training no longer sees them")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except StorewiseError as error:
        typer.echo(f"error: {error.message}", err=True)
        sys.exit(EXIT_USAGE)
