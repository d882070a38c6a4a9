"""`storewise erase CUSTOMER_ID`: a customer's right to be forgotten (privacy/)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.common import ShopDir, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths


def erase_command(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    delete_old_versions: Annotated[
        bool | None,
        typer.Option(
            "--delete-old-versions/--keep-old-versions",
            help="Delete the registered model versions that still hold the id and are not the "
            "champion (asked interactively when not given).",
        ),
    ] = None,
) -> None:
    """Remove a customer from the shop's data, features, logs and reports, and from what the service answers."""
    from privacy.erasure import erase_customer, unfinished_erasures
    from storewise.erasures import ERASURES
    from storewise.ids import normalize_customer_id

    shop = ShopPaths(shop_dir)
    who = normalize_customer_id(customer_id)
    result = erase_customer(shop, who)
    if result.already_recorded:
        say("this customer's erasure was recorded before: every step checked and finished again")
    for key, value in result.counts.items():
        say(f"  {key}: {value}")
    say(
        f"wrote {shop.raw}, {shop.features}, {shop.logs} and an erasure record (a salted hash, not the id) in {shop.root / ERASURES}"
    )
    say(
        "the service stopped personalizing for this customer before anything else; the next training no longer sees them"
    )
    for started in unfinished_erasures(shop):
        say(
            f"warning: an erasure started at {started} did not finish: run `storewise erase` with that id again"
        )
    offer_to_delete_versions(who, delete_old_versions)


def offer_to_delete_versions(customer_id: str, delete: bool | None) -> None:
    """List the registered versions that still hold the id; delete those that are not the
    champion if `delete` (asked when None and a person is at the terminal)."""
    from pathlib import Path

    from inference.registry import tracking_uri
    from privacy.erasure import delete_versions, versions_holding
    from storewise.service_settings import model_cache_dir

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        say(f"no tracking store at {uri}: no model versions to check")
        return
    held = versions_holding(customer_id)
    if not held:
        say("no registered model version holds the id")
        return
    for version in held:
        say(
            f"  {version.name} v{version.version} still holds the id"
            + (" (the champion)" if version.champion else "")
        )
    if any(version.champion for version in held):
        say("the champion keeps it until a retrained model is promoted in its place; then run this again")
    old = [version for version in held if not version.champion]
    if not old:
        return
    if delete is None:
        delete = sys.stdin.isatty() and typer.confirm(
            f"delete the {len(old)} version(s) that are not the champion?", default=False
        )
    if not delete:
        say("kept them; `storewise erase ID --delete-old-versions` deletes them")
        return
    for version in delete_versions(old, model_cache_dir()):
        say(f"deleted {version.name} v{version.version}")


def register(root: typer.Typer) -> None:
    root.command("erase")(erase_command)
