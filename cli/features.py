"""`storewise features build`: every feature output of a shop (features/)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ShopDir, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths

app = typer.Typer(
    help="Feature pipelines: interactions, RFM, journey, clusters, demand.", no_args_is_help=True
)


@app.command("build")
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
