"""When the next delivery is due: promised by the purchase orders (what a shop knows) or
really (what the simulator's oracle knows); carried from the products table into the
pricing model as periods from the day being priced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intake.demo.generate import GeneratedShop
from storewise import columns as c
from training.pricing.build import delivery_periods


def test_a_late_delivery_is_promised_before_it_comes(small_generated: GeneratedShop) -> None:
    dynamics = small_generated.dynamics.fresh()
    dynamics._keep_pending(np.zeros(len(dynamics.pending_day), bool))  # nothing on the way
    lead = dynamics.items.lead_days
    dynamics._place_orders(10, np.array([0, 1]), late=np.array([True, False]))
    # ordered on day 10, promised for day 11 + lead; the late one arrives on 11 + lead * 5 // 2
    promised = dynamics.days_to_delivery(12)
    real = dynamics.days_to_delivery(12, promised=False)
    assert promised[:2].tolist() == [lead[0] - 1, lead[1] - 1]
    assert real[:2].tolist() == [lead[0] * 5 // 2 - 1, lead[1] - 1]
    assert np.isnan(promised[2:]).all(), "nothing on the way: unknown"
    assert np.isnan(real[2:]).all()
    after = 11 + lead[0] + 1  # the promised day has passed, the delivery has not come
    assert np.isnan(dynamics.days_to_delivery(after)[0]), "overdue: the shop cannot tell when"
    assert dynamics.days_to_delivery(after, promised=False)[0] == 11 + lead[0] * 5 // 2 - after
    # a later order does not make an overdue one known
    dynamics._place_orders(after, np.array([0]), late=np.array([False]))
    assert np.isnan(dynamics.days_to_delivery(after + 1)[0])


def test_the_demo_shop_lists_the_promised_next_delivery(small_generated: GeneratedShop) -> None:
    products = small_generated.tables[c.PRODUCTS]
    end = small_generated.tables[c.ORDERS][c.ORDERED_AT].max().tz_localize(None).normalize()
    due = pd.to_datetime(products[c.NEXT_DELIVERY])
    on_the_way = np.isin(np.arange(len(products)), small_generated.dynamics.pending_item)
    assert due.notna().any()
    assert not due[~on_the_way].notna().any(), "an item with nothing on the way has no date"
    lead = pd.to_timedelta(small_generated.dynamics.items.lead_days + 1, unit="D")
    known = due.notna().to_numpy()
    assert (due[known] > end).all()
    assert (due[known] <= end + lead[known]).all(), "promised within the item's lead time"


def test_delivery_periods_from_the_period_being_priced() -> None:
    dates = pd.Series(pd.to_datetime(["2026-03-02", "2026-03-12", "2026-02-27", None, "2026-03-29"]))
    # daily data ending on 1 March prices 2 March: due then is 0 days, 12 March 10 days,
    # 27 February overdue, none unknown
    assert delivery_periods(dates, pd.Timestamp("2026-03-01", tz="UTC"), "day")[:4] == pytest.approx(
        [0.0, 10.0, np.nan, np.nan], nan_ok=True
    )
    # weekly data whose last week starts 1 March prices the week of 8 March: 29 March is 3 weeks on
    weekly = delivery_periods(dates, pd.Timestamp("2026-03-01"), "week")
    assert weekly[[1, 4]] == pytest.approx([4 / 7, 3.0])
    assert np.isnan(weekly[0]), "due before the priced week: overdue"
