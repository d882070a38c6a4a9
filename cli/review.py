"""`storewise compare` and `storewise promote`: the reviewer's verbs (reports/comparison.py,
training/promotion.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import ShopDir, fail, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths

MODEL_NAMES = {"recommender": "storewise-recommender", "pricing": "storewise-pricing"}


def promote_command(
    model: Annotated[str, typer.Option(help="recommender or pricing.")] = "recommender",
    version: Annotated[str | None, typer.Option(help="The version to promote (default: the newest).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Skip the gate (recorded as a tag on the version).")
    ] = False,
    experiment: Annotated[
        bool,
        typer.Option(
            "--experiment", help="The online experiment's report is the evidence (recorded on the version)."
        ),
    ] = False,
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
) -> None:
    """Give a registered version the champion alias, if it passes the promotion gate."""
    from inference.registry import tracking_uri
    from training.promotion import promote

    if model not in MODEL_NAMES:
        fail(f"unknown --model '{model}'; use one of: {', '.join(MODEL_NAMES)}")
    if experiment:
        from cli.experiment import promote_on_experiment

        if model != "recommender" or force:
            fail("--experiment promotes a recommender challenger on its own evidence (no --force)")
        promote_on_experiment(version, ShopPaths(shop_dir))
        return
    decision = promote(MODEL_NAMES[model], version, force=force)
    if decision.promoted:
        say(f"promoted {MODEL_NAMES[model]} version {decision.version} to champion: {decision.reason}")
        say(f"wrote the alias in {tracking_uri()}")
    else:
        say(f"not promoted: {MODEL_NAMES[model]} version {decision.version} {decision.reason}")
        say(f"the champion stays version {decision.previous} (wrote nothing)")
        raise typer.Exit(1)


def compare_command(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more MLflow run ids.")],
    out: Annotated[Path, typer.Option(help="The HTML report to write.")] = Path("reports/comparison.html"),
) -> None:
    """A side-by-side HTML report of runs: params that differ, metrics with baselines, a chart."""
    from reports.comparison import compare

    if len(run_ids) < 2:
        fail("compare needs at least two run ids")
    path = compare(run_ids, out)
    say(f"wrote {path} and {path.with_suffix('.csv')}")


def register(root: typer.Typer) -> None:
    root.command("promote")(promote_command)
    root.command("compare")(compare_command)
