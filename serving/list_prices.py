"""List prices: what the service charges while no pricing model has passed the gate.

A small shop's optimizer may not beat the fixed price yet, so `storewise promote` gives no
pricing champion. The service still recommends, quotes and audits, at the shop's list
prices (`raw/products.parquet`), and every answer says so (`model_versions.price_source`).
It has the part of `PricingModel`'s interface the service uses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storewise import columns as c
from storewise.shop import ShopPaths

REASON = "list price: no pricing model has passed the promotion gate yet"


class ListPrices:
    def __init__(self, shop: ShopPaths) -> None:
        products = pd.read_parquet(shop.table(c.PRODUCTS), columns=[c.ITEM_ID, c.LIST_PRICE])
        ids = products[c.ITEM_ID].astype(str).to_numpy()
        prices = products[c.LIST_PRICE].to_numpy(float).round(2)
        self.position = {item: index for index, item in enumerate(ids)}
        self.decided = {
            "item_id": ids,
            "price": prices,
            "previous_price": prices,
            "reason": np.full(len(ids), REASON, dtype=object),
        }

    def knows(self, item_id: str) -> bool:
        return item_id in self.position

    def price(self, item_ids: list[str]) -> dict[str, np.ndarray]:
        positions = np.array([self.position[item] for item in item_ids], dtype=np.int64)
        return {name: values[positions] for name, values in self.decided.items()}
