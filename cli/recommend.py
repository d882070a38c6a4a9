"""`storewise recommend` (batch top k) and `storewise audience`: the champion recommender
answering many customers at once (inference/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from cli.common import ShopDir, fail, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths


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

    from inference.recommender.batch import batch_top_k, read_customer_ids
    from inference.registry import RECOMMENDER, load_champion

    ids = read_customer_ids(customers)
    started = time.perf_counter()
    recommendations = load_champion(RECOMMENDER, model_uri)
    loaded = time.perf_counter()
    purchased: Literal["include", "exclude"] = "include" if include_purchased else "exclude"
    table = batch_top_k(recommendations, ids, [k] * len(ids), purchased=purchased)
    elapsed = time.perf_counter() - loaded
    out.parent.mkdir(parents=True, exist_ok=True)
    table.drop(columns=["source"]).to_csv(out, index=False)
    personal = int(table.drop_duplicates("customer_id")["source"].eq("personalized").sum())
    say(
        f"  {len(ids):,} customers ({personal:,} personalized, the rest non-personalized), {len(table):,} rows, "
        f"{len(ids) / max(elapsed, 1e-9):,.0f} customers/s after loading the model in {loaded - started:.1f} s"
    )
    say(f"wrote {out} (shop {shop_dir})")


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
    from inference.registry import RECOMMENDER, load_champion

    if (item is None) == (category is None):
        fail("give exactly one of --item or --category")
    recommendations = load_champion(RECOMMENDER, model_uri)
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


def register(root: typer.Typer) -> None:
    root.command("recommend")(recommend_command)
    root.command("audience")(audience_command)
