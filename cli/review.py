"""`storewise compare` and `storewise promote`: the reviewer's verbs (reports/comparison.py,
training/promotion.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import MODEL_NAMES, ModelKind, ShopDir, fail, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths


def promote_command(
    model: Annotated[ModelKind, typer.Option(help="The model to promote.")] = ModelKind.RECOMMENDER,
    version: Annotated[
        str | None,
        typer.Option(help="The version to promote (default: the newest trained on the shop, or the newest)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Skip the gate (recorded as a tag on the version).")
    ] = False,
    experiment: Annotated[
        bool,
        typer.Option(
            "--experiment", help="The online experiment's report is the evidence (recorded on the version)."
        ),
    ] = False,
    shop_dir: Annotated[
        Path | None,
        typer.Option(
            "--shop-dir",
            help="The shop whose model to promote: the newest version trained on its current features "
            "(a --version trained on other data is refused). Without it, any shop's newest version "
            "(with --experiment: the shop whose service logs are the evidence, default data/demo).",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Give a registered version the champion alias, if it passes the promotion gate."""
    from features.manifest import read_manifest
    from inference.registry import tracking_uri
    from training.promotion import promote

    if experiment:
        from cli.experiment import promote_on_experiment

        if model != ModelKind.RECOMMENDER or force:
            fail("--experiment promotes a recommender challenger on its own evidence (no --force)")
        promote_on_experiment(version, ShopPaths(shop_dir or DEFAULT_SHOP_DIR))
        return
    data_hash = None
    if shop_dir is not None:
        manifest = read_manifest(ShopPaths(shop_dir))
        if manifest is None:
            fail(
                f"{shop_dir}: no features, so no model trained on them; run `storewise features build` first"
            )
        data_hash = str(manifest["input_hash"])
    name = MODEL_NAMES[model]
    decision = promote(name, version, force=force, data_hash=data_hash)
    if decision.promoted:
        say(f"promoted {name} version {decision.version} to champion: {decision.reason}")
        say(f"wrote the alias in {tracking_uri()}")
    else:
        say(f"not promoted: {name} version {decision.version} {decision.reason}")
        say(f"the champion stays version {decision.previous} (wrote nothing)")
        raise typer.Exit(1)


def compare_command(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more MLflow run ids.")],
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    out: Annotated[
        Path | None, typer.Option(help="The HTML report to write (default <shop>/reports/comparison.html).")
    ] = None,
) -> None:
    """A side-by-side HTML report of runs: params that differ, metrics with baselines, a chart."""
    from reports.comparison import compare

    if len(run_ids) < 2:
        fail("compare needs at least two run ids")
    path = compare(run_ids, out or ShopPaths(shop_dir).root / "reports" / "comparison.html")
    say(f"wrote {path} and {path.with_suffix('.csv')}")


def register(root: typer.Typer) -> None:
    root.command("promote")(promote_command)
    root.command("compare")(compare_command)
