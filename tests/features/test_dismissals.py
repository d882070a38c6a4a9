"""'Not interested' as a negative signal: the service's dismissals log read back as
events, counted against the item in the interactions the next training learns from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from features.interactions import DISMISS, build_interactions, with_dismissals
from storewise import columns as c
from storewise.service_logs import DISMISSALS
from storewise.settings import InteractionWeights
from storewise.shop import ShopPaths
from tests.features.test_features import customers_table, events_table, orders_table


def test_a_dismissal_counts_against_the_item_and_can_drop_the_pair(tmp_path: Path) -> None:
    shop = ShopPaths(tmp_path / "shop")
    shop.logs.mkdir(parents=True)
    lines = [
        {"at": "2026-01-21T10:00:00+0800", "customer_id": "ann", "item_id": "A"},
        {"at": "2026-01-21T10:00:00+0800", "customer_id": "ann", "item_id": "B"},
    ]
    (shop.logs / f"{DISMISSALS}.host-7.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (shop.logs / f"{DISMISSALS}.host-8.jsonl").write_text('{"at": "2026-01-21T1')  # a torn line: skipped
    orders = orders_table([("O1", "ann", "A", 1, 10.0, "2026-01-21 10:00", False)])
    events = events_table([("ann", "B", c.VIEW, "2026-01-21 10:00")])
    tables = with_dismissals(
        {c.ORDERS: orders, c.EVENTS: events, c.CUSTOMERS: customers_table({"ann": True})}, shop
    )
    added = tables[c.EVENTS][tables[c.EVENTS][c.EVENT] == DISMISS]
    assert len(added) == 2
    assert str(added[c.AT].dt.tz) == str(events[c.AT].dt.tz)
    weights = InteractionWeights(dismiss=-4.0)
    table = build_interactions(orders, tables[c.EVENTS], tables[c.CUSTOMERS], weights).set_index(c.ITEM_ID)
    # A: bought (8) then dismissed (-4): still a pair, weaker; B: a view (1) then dismissed: gone
    assert table.loc["A", "weight"] == pytest.approx(8 - 4)
    assert "B" not in table.index
    without = with_dismissals({c.ORDERS: orders, c.EVENTS: events}, ShopPaths(tmp_path / "none"))
    assert without[c.EVENTS] is events, "no dismissals: the tables as they were"
