"""The demo generator's true demand families, on a hand-built two-category shop whose
purchase probabilities are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from intake.demo.dynamics import DayDraws, ItemTruth, ShopDynamics, ShopTruth

REF = np.array([10.0, 20.0, 30.0, 40.0])
ELASTICITY = np.array([-2.0, -1.5, -3.0, -2.0])
CONVERSION = 0.1


def shop(family: str, stock: int = 1000) -> ShopDynamics:
    n = len(REF)
    items = ItemTruth(
        view_share=np.full(n, 1 / n),
        trend_per_year=np.zeros(n),
        launch_day=np.zeros(n, np.int64),
        conversion=np.full(n, CONVERSION),
        elasticity=ELASTICITY,
        ref_price=REF,
        extra_units=np.zeros(n),
        unit_cost=REF / 2,
        lead_days=np.full(n, 3, np.int64),
        reorder_point=np.zeros(n, np.int64),
        order_quantity=np.full(n, 10, np.int64),
        category=np.array([0, 0, 0, 1]),
    )
    truth = ShopTruth(
        start="2024-01-01",
        traffic_per_day=100.0,
        growth_per_year=0.0,
        promo_view_boost=1.0,
        anonymous_share=0.0,
        cart_to_purchase=0.0,
        late_delivery_probability=0.0,
        demand_family=family,
        reference_memory=0.25,
        reference_effect=-1.0,
        substitution=1.0,
    )
    return ShopDynamics(truth, items, np.full(n, stock, np.int64), [])


def test_constant_elasticity_is_a_power_of_the_price_ratio() -> None:
    p = shop("constant_elasticity").purchase_probability(REF * 1.2)
    assert p == pytest.approx(CONVERSION * 1.2**ELASTICITY)


def test_linear_demand_falls_in_a_straight_line_to_zero_at_the_choke_price() -> None:
    dynamics = shop("linear")
    # 1 + e (r - 1) at r = 1.2: 0.6, 0.7, 0.4, 0.6
    assert dynamics.purchase_probability(REF * 1.2) == pytest.approx(
        CONVERSION * np.array([0.6, 0.7, 0.4, 0.6])
    )
    choke = REF * (1 - 1 / ELASTICITY)  # 15, 33.33, 40, 60
    assert dynamics.purchase_probability(choke) == pytest.approx(np.zeros(4), abs=1e-12)
    assert (dynamics.purchase_probability(choke * 1.1) == 0).all()


def test_a_cuts_boost_fades_as_customers_get_used_to_the_reference_price() -> None:
    dynamics = shop("reference_price")
    cut = REF * 0.8
    first = dynamics.purchase_probability(cut)
    # a surprise: 0.8 ** e from the price, 0.8 ** -1 from the comparison with the usual price
    assert first == pytest.approx(CONVERSION * 0.8**ELASTICITY / 0.8)
    dynamics.remember(cut)
    assert dynamics.reference == pytest.approx(REF * (1 - 0.25 * 0.2))  # closes a quarter of the gap
    for _ in range(200):
        dynamics.remember(cut)
    assert dynamics.purchase_probability(cut) == pytest.approx(CONVERSION * 0.8**ELASTICITY, rel=1e-6)


def test_a_cut_on_one_item_takes_sales_from_its_category_only() -> None:
    dynamics = shop("substitution")
    prices = REF.copy()
    prices[0] = REF[0] * 0.5
    p = dynamics.purchase_probability(prices)
    # items 1 and 2 see the mean log price ratio of their two category peers: log(0.5) / 2
    expected_peer = CONVERSION * math.exp(math.log(0.5) / 2)
    assert p[1] == pytest.approx(expected_peer)
    assert p[2] == pytest.approx(expected_peer)
    assert p[0] == pytest.approx(CONVERSION * 0.5 ** ELASTICITY[0])  # its peers are at their usual prices
    assert p[3] == pytest.approx(CONVERSION)  # the other category: alone, untouched


def test_the_same_draws_sell_no_more_at_a_higher_price() -> None:
    rng = np.random.default_rng(3)
    views = np.array([400, 400, 400, 400])
    item = np.repeat(np.arange(4), views)
    draws = DayDraws(views, item, rng.random(len(item)), np.zeros(len(item), np.int64), np.ones(4))
    low = shop("constant_elasticity").step_drawn(0, REF * 0.9, draws)
    high = shop("constant_elasticity").step_drawn(0, REF * 1.1, draws)
    assert (high.units <= low.units).all()
    assert (low.units > high.units).any()
    # a view buys when its uniform is under the purchase probability: count them by hand
    expected = np.bincount(item[draws.buy < (CONVERSION * 0.9**ELASTICITY)[item]], minlength=4)
    assert low.units.tolist() == expected.tolist()


def test_a_fresh_copy_runs_forward_on_its_own_and_shares_the_days_views() -> None:
    """The simulator runs every policy on a `fresh()` copy of the loaded truth: stepping one
    copy must not move the other's stock, deliveries or reference prices, and a day's views
    (worked out once, then shared) are the same numbers as worked out anew."""
    original = shop("reference_price", stock=5)
    original.pending_day, original.pending_item, original.pending_quantity, original.pending_expected = (
        np.array([2]),
        np.array([1]),
        np.array([7]),
        np.array([2]),
    )
    copy = original.fresh()
    n = len(REF)
    draws = DayDraws(
        views=np.full(n, 50),
        item=np.repeat(np.arange(n), 50),
        buy=np.zeros(4 * 50),  # every view buys: stock runs out
        extra=np.zeros(4 * 50, np.int64),
        late=np.ones(n),
    )
    for day in range(3):
        copy.step_drawn(day, REF * 0.8, draws)
    assert (copy.stock != 5).any()
    assert original.stock.tolist() == [5] * n
    assert original.pending_day.tolist() == [2]
    assert original.reference == pytest.approx(REF)
    no_promo = np.zeros(n, bool)
    views = copy.expected_views(2, no_promo)
    assert original.expected_views(2, no_promo) is not views  # each caller gets its own array
    assert views.tolist() == ShopDynamics._expected_views(original, 2).tolist()  # the same numbers
    assert np.allclose(views, views[0])  # equal view shares, no trend: an even split
