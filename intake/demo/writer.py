"""Writing a generated demo shop: canonical tables, shop settings and ground truth."""

from __future__ import annotations

from intake.demo.generate import GeneratedShop
from intake.tables import staged_shop, write_tables
from storewise.shop import ShopPaths, write_shop_settings


def write_generated_shop(shop: ShopPaths, generated: GeneratedShop) -> None:
    stale = (shop.import_report, shop.import_summary)
    with staged_shop(shop, stale=stale) as staging:
        write_tables(staging, generated.tables)
        write_shop_settings(staging, generated.settings)
        generated.dynamics.save(staging / shop.ground_truth.name, generated.item_ids, generated.days)
