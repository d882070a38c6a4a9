"""`storewise data generate | import | check`: a shop's data in (intake/)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import ShopDir, fail, say
from intake.demo.settings import GeneratorSettings
from intake.importers.consent import Consent
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths

if TYPE_CHECKING:
    from intake.importers.common import ImportResult

app = typer.Typer(
    help="Shop data: generate the demo shop, import exports, check a shop.", no_args_is_help=True
)
DEMO = GeneratorSettings()


class ImportFormat(StrEnum):
    """The exports `data import` reads."""

    ONLINE_RETAIL = "online-retail"
    WEEKLY_SALES = "weekly-sales"
    CANONICAL = "canonical"


class DemandFamily(StrEnum):
    """The demo shop's true demand families (intake/demo/settings.py FAMILIES)."""

    CONSTANT_ELASTICITY = "constant_elasticity"
    LINEAR = "linear"
    REFERENCE_PRICE = "reference_price"
    SUBSTITUTION = "substitution"


DEFAULT_FAMILY = DemandFamily(DEMO.demand_family)


class Period(StrEnum):
    """The period of a weekly-sales export's rows."""

    WEEK = "week"
    DAY = "day"


@app.command("generate")
def data_generate(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = DEMO.customers,
    products: Annotated[int, typer.Option(min=1, help="Number of products.")] = DEMO.products,
    days: Annotated[int, typer.Option(min=28, help="Days of history.")] = DEMO.days,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same shop.")] = DEMO.seed,
    end_date: Annotated[str, typer.Option(help="Last day of the history (YYYY-MM-DD).")] = DEMO.end_date,
    demand_family: Annotated[
        DemandFamily,
        typer.Option(
            help="The true demand's family: constant_elasticity (what the pricing model fits), "
            "linear (a choke price), reference_price (a cut's boost fades) or substitution."
        ),
    ] = DEFAULT_FAMILY,
) -> None:
    """Generate the demo jewellery shop (deterministic for a seed)."""
    from tqdm import tqdm

    from intake.demo.generate import generate_shop
    from intake.demo.writer import write_generated_shop

    options = GeneratorSettings(
        customers=customers,
        products=products,
        days=days,
        seed=seed,
        end_date=end_date,
        demand_family=str(demand_family),
    )
    try:
        options.validate()
    except ValueError as error:
        fail(str(error))
    shop = ShopPaths(shop_dir)
    with tqdm(total=days, desc="simulating days", unit="day", file=sys.stderr, mininterval=0.5) as bar:
        generated = generate_shop(options, progress=bar.update)
    write_generated_shop(shop, generated)
    for name, table in generated.tables.items():
        say(f"  {name:<14} {len(table):>10,} rows")
    say(f"wrote {shop.raw} (canonical tables), {shop.ground_truth} (true demand, for the simulator only)")


@app.command("import")
def data_import(
    path: Annotated[Path, typer.Argument(help="The export: a file, or a directory of canonical tables.")],
    format: Annotated[ImportFormat, typer.Option("--format", help="The export's format.")],
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    consent: Annotated[
        Consent,
        typer.Option(
            help="Consent to assume for customers the export has no consent for (personalization: "
            "not marketing). Invoice exports carry none."
        ),
    ] = Consent.PERSONALIZATION,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="The shop's time zone (default: Europe/London for "
            "online-retail, UTC for weekly-sales, Asia/Kuala_Lumpur for canonical)."
        ),
    ] = None,
    currency: Annotated[
        str | None,
        typer.Option(
            help="The shop's currency (default: GBP for online-retail, USD for weekly-sales, RM for canonical)."
        ),
    ] = None,
    period: Annotated[
        Period, typer.Option(help="weekly-sales only: the period of the export's rows.")
    ] = Period.WEEK,
) -> None:
    """Import a shop's export into canonical tables, with a report of every row set aside."""
    from intake.importers.common import write_import

    # the enums already refused anything else (a usage error naming the option); kept for
    # callers of this function from Python
    formats = tuple(ImportFormat)
    if format not in formats:
        fail(f"unknown --format '{format}'; use one of: {', '.join(formats)}")
    if period not in tuple(Period):
        fail(f"unknown --period '{period}'; use week or day")
    try:
        assumed = Consent(consent)
    except ValueError:
        fail(f"unknown --consent '{consent}'; use one of: {', '.join(item.value for item in Consent)}")
    shop = ShopPaths(shop_dir)
    result = _read_export(format, path, assumed, timezone, currency, period)
    write_import(shop, result)
    _print_summary(result.summary)
    for note in result.notes:
        say(f"note: {note}")
    say(
        f"wrote {shop.raw} (canonical tables), {shop.import_report} (one line per row not imported as is), "
        f"{shop.import_summary}"
    )


def _read_export(
    format: str, path: Path, consent: object, timezone: str | None, currency: str | None, period: str
) -> ImportResult:
    """The import result of one export format, with that format's default zone and currency."""
    from intake.importers.consent import Consent

    assert isinstance(consent, Consent)
    if format == "online-retail":
        from intake.importers.online_retail import import_online_retail

        return import_online_retail(
            path, consent=consent, timezone=timezone or "Europe/London", currency=currency or "GBP"
        )
    if format == "weekly-sales":
        from intake.importers.weekly_sales import import_weekly_sales

        return import_weekly_sales(
            path,
            period="day" if period == "day" else "week",
            timezone=timezone or "UTC",
            currency=currency or "USD",
        )
    from intake.importers.canonical import import_canonical

    return import_canonical(
        path, consent=consent, timezone=timezone or "Asia/Kuala_Lumpur", currency=currency or "RM"
    )


def _print_summary(summary: dict[str, object]) -> None:
    for key, value in summary.items():
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


@app.command("check")
def data_check(shop_dir: ShopDir = DEFAULT_SHOP_DIR) -> None:
    """Validate a shop's tables against the canonical schemas and summarize them."""
    from intake.check import check_tables
    from intake.tables import read_tables

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
