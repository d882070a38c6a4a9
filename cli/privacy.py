"""`storewise erase CUSTOMER_ID`: a customer's right to be forgotten (privacy/)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ShopDir, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths


def erase_command(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
) -> None:
    """Remove a customer from the shop's data, features, logs and reports, and from what the service answers."""
    from privacy.erasure import erase_customer
    from storewise.erasures import ERASURES
    from storewise.ids import normalize_customer_id

    shop = ShopPaths(shop_dir)
    counts = erase_customer(shop, normalize_customer_id(customer_id))
    for key, value in counts.items():
        say(f"  {key}: {value}")
    say(
        f"wrote {shop.raw}, {shop.features}, {shop.logs} and an erasure record (a salted hash, not the id) in {shop.root / ERASURES}"
    )
    say("the service stops personalizing for this customer at once; the next training no longer sees them")


def register(root: typer.Typer) -> None:
    root.command("erase")(erase_command)
