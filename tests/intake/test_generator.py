"""The demo shop generator: deterministic, complete, and with true structure to find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intake.check import check_tables
from intake.demo.dynamics import ShopDynamics
from intake.demo.generate import GeneratedShop, GeneratorSettings, generate_shop
from intake.schemas import SCHEMAS
from storewise import columns as c
from storewise.shop import ShopPaths
from tests.helpers import SMALL

YEAR = GeneratorSettings(customers=20_000, products=40, days=365, seed=11)


@pytest.fixture(scope="module")
def year_shop() -> GeneratedShop:
    return generate_shop(YEAR)


def test_same_seed_gives_identical_tables(small_generated: GeneratedShop) -> None:
    again = generate_shop(SMALL)
    for name, table in small_generated.tables.items():
        pd.testing.assert_frame_equal(table, again.tables[name], obj=name)


def test_another_seed_gives_another_shop(small_generated: GeneratedShop) -> None:
    other = generate_shop(GeneratorSettings(**{**SMALL.__dict__, "seed": SMALL.seed + 1}))
    assert not other.tables[c.ORDERS][c.ITEM_ID].equals(small_generated.tables[c.ORDERS][c.ITEM_ID])


def test_tables_have_canonical_columns_and_requested_sizes(small_generated: GeneratedShop) -> None:
    tables = small_generated.tables
    assert set(tables) == set(SCHEMAS)
    # the demo shop has one store (no product or store columns) and open purchase orders
    written_optional = {c.NEXT_DELIVERY}
    for name, table in tables.items():
        written = [
            spec.name for spec in SCHEMAS[name].columns if not spec.optional or spec.name in written_optional
        ]
        assert list(table.columns) == written, name
    assert len(tables[c.CUSTOMERS]) == SMALL.customers
    assert len(tables[c.PRODUCTS]) == SMALL.products
    report = check_tables(tables, small_generated.settings.tz)
    assert report.ok, [str(p) for p in report.errors]


def test_history_spans_the_requested_days(small_generated: GeneratedShop) -> None:
    orders = small_generated.tables[c.ORDERS]
    sales = orders[~orders[c.RETURNED]]
    local_dates = sales[c.ORDERED_AT].dt.tz_convert(small_generated.settings.tz).dt.date
    end = pd.Timestamp(SMALL.end_date).date()
    start = (pd.Timestamp(SMALL.end_date) - pd.Timedelta(days=SMALL.days - 1)).date()
    assert local_dates.min() >= start
    assert local_dates.max() <= end
    assert local_dates.nunique() > SMALL.days * 0.9


def test_catalogue_is_a_jewellery_shop_priced_in_ringgit(small_generated: GeneratedShop) -> None:
    products = small_generated.tables[c.PRODUCTS]
    assert small_generated.settings.currency == "RM"
    assert set(products[c.CATEGORY]) <= {
        "necklace",
        "pendant",
        "chain",
        "earrings",
        "bracelet",
        "ring",
        "gift box",
        "care kit",
    }
    assert products[c.CATEGORY].nunique() >= 6
    assert (products[c.UNIT_COST] < products[c.LIST_PRICE]).all()
    cents = np.round(products[c.LIST_PRICE] * 100).astype(int) % 100
    assert (cents == 90).all(), "shop prices end in .90"


def test_ground_truth_is_written_beside_the_data_and_not_in_it(small_shop: ShopPaths) -> None:
    truth = pd.read_parquet(small_shop.ground_truth / "items.parquet")
    products = pd.read_parquet(small_shop.table(c.PRODUCTS))
    assert list(truth[c.ITEM_ID]) == list(products[c.ITEM_ID])
    assert (truth["elasticity"] < 0).all()
    for name in c.TABLES:
        assert "elasticity" not in pd.read_parquet(small_shop.table(name)).columns
    dynamics, ids, next_day = ShopDynamics.load(small_shop.ground_truth)
    assert next_day == SMALL.days
    assert list(ids) == list(products[c.ITEM_ID])
    np.testing.assert_array_equal(dynamics.stock, products[c.STOCK].to_numpy())


def test_expected_demand_follows_the_true_elasticity(small_shop: ShopPaths) -> None:
    dynamics, _, _ = ShopDynamics.load(small_shop.ground_truth)
    promo = np.zeros(dynamics.n_items, bool)
    base = dynamics.items.ref_price
    at_list = dynamics.expected_units(10, base, promo)
    dearer = dynamics.expected_units(10, base * 1.1, promo)
    expected_ratio = 1.1**dynamics.items.elasticity
    uncapped = (dynamics.purchase_probability(base * 0.99) < 0.9) & dynamics.launched(10)
    assert uncapped.sum() > dynamics.n_items // 2
    np.testing.assert_allclose(dearer[uncapped] / at_list[uncapped], expected_ratio[uncapped], rtol=1e-9)


def _daily_item_panel(shop: GeneratedShop) -> pd.DataFrame:
    """Units, views and the price charged per item and local day, out-of-stock days removed."""
    tz = shop.settings.tz
    tables = shop.tables
    orders = tables[c.ORDERS][~tables[c.ORDERS][c.RETURNED]]
    units = orders.groupby(
        [c.ITEM_ID, orders[c.ORDERED_AT].dt.tz_convert(tz).dt.normalize().dt.tz_localize(None)]
    )[c.QUANTITY].sum()
    events = tables[c.EVENTS]
    views = events[events[c.EVENT] == c.VIEW]
    views = views.groupby(
        [c.ITEM_ID, views[c.AT].dt.tz_convert(tz).dt.normalize().dt.tz_localize(None)]
    ).size()
    days = pd.date_range(
        orders[c.ORDERED_AT].min().tz_convert(tz).normalize().tz_localize(None), periods=YEAR.days
    )
    grid = pd.MultiIndex.from_product([tables[c.PRODUCTS][c.ITEM_ID], days], names=[c.ITEM_ID, c.DATE])
    panel = pd.DataFrame(
        {"units": units.reindex(grid, fill_value=0), "views": views.reindex(grid, fill_value=0)}
    )
    panel = panel.reset_index()
    prices = tables[c.PRICE_HISTORY].sort_values(c.DATE)
    panel = pd.merge_asof(panel.sort_values(c.DATE), prices, on=c.DATE, by=c.ITEM_ID)
    stock = tables[c.STOCK_HISTORY].sort_values(c.DATE)
    panel = pd.merge_asof(panel.sort_values(c.DATE), stock, on=c.DATE, by=c.ITEM_ID)
    return panel[panel[c.STOCK] > 0]


def test_demand_falls_when_price_rises(year_shop: GeneratedShop) -> None:
    """From the observable tables alone: within an item, conversion (units per view) is
    lower at higher prices, with the slope of the items' true elasticities."""
    panel = _daily_item_panel(year_shop).sort_values([c.ITEM_ID, c.DATE])
    # a day that ends with an empty shelf sold what it had, not what was wanted
    panel = panel[panel.groupby(c.ITEM_ID)[c.STOCK].shift(-1).fillna(1) > 0]
    by_price = panel.groupby([c.ITEM_ID, c.PRICE])[["units", "views"]].sum().reset_index()
    by_price = by_price[(by_price["units"] > 0) & (by_price["views"] > 0)].copy()
    by_price["log_conversion"] = np.log(by_price["units"] / by_price["views"])
    by_price["log_price"] = np.log(by_price[c.PRICE])
    weights = by_price["units"]
    for column in ("log_conversion", "log_price"):
        weighted_sum = (by_price[column] * weights).groupby(by_price[c.ITEM_ID]).transform("sum")
        by_price[column] -= weighted_sum / weights.groupby(by_price[c.ITEM_ID]).transform("sum")
    leverage = weights * by_price["log_price"] ** 2
    slope = np.sum(weights * by_price["log_price"] * by_price["log_conversion"]) / leverage.sum()
    # the pooled slope estimates the items' elasticities weighted by their price leverage
    truth = pd.Series(year_shop.dynamics.items.elasticity, index=year_shop.item_ids.to_numpy())
    expected = np.sum(leverage * truth.loc[by_price[c.ITEM_ID]].to_numpy()) / leverage.sum()
    assert slope < -0.5
    assert slope == pytest.approx(expected, abs=0.3)


def test_prices_vary_with_promotions_markdowns_and_tests(year_shop: GeneratedShop) -> None:
    history = year_shop.tables[c.PRICE_HISTORY]
    changes = history.groupby(c.ITEM_ID).size()
    assert (changes > 1).mean() > 0.8, "most items change price during a year"
    assert history[c.PROMO].any()
    promo_months = history.loc[history[c.PROMO], c.DATE].dt.month
    assert {2, 11, 12} <= set(promo_months), "campaigns at Valentine's, 11.11/Black Friday and Christmas"


def test_traffic_peaks_before_gifts_and_at_weekends(year_shop: GeneratedShop) -> None:
    events = year_shop.tables[c.EVENTS]
    views = events[events[c.EVENT] == c.VIEW][c.AT].dt.tz_convert(year_shop.settings.tz)
    per_day = views.dt.normalize().value_counts().sort_index()
    december_peak = per_day[(per_day.index.month == 12) & (per_day.index.day.isin(range(14, 22)))].mean()
    january_lull = per_day[(per_day.index.month == 1) & (per_day.index.day <= 20)].mean()
    assert december_peak > 1.8 * january_lull
    weekend = per_day[per_day.index.day_of_week >= 5].median()
    midweek = per_day[per_day.index.day_of_week.isin([0, 1])].median()
    assert weekend > midweek


def test_funnel_drops_off_and_every_purchase_was_viewed_and_carted(
    small_generated: GeneratedShop,
) -> None:
    events = small_generated.tables[c.EVENTS]
    counts = events[c.EVENT].value_counts()
    assert counts[c.VIEW] > 3 * counts[c.ADD_TO_CART] / 2 > counts[c.PURCHASE] / 2
    orders = small_generated.tables[c.ORDERS]
    assert counts[c.PURCHASE] == (~orders[c.RETURNED]).sum()
    known = events[events[c.CUSTOMER_ID].notna()]
    first = known.groupby([c.CUSTOMER_ID, c.ITEM_ID, c.EVENT])[c.AT].min().unstack()
    bought = first[first[c.PURCHASE].notna()]
    assert bought[c.VIEW].notna().all()
    assert bought[c.ADD_TO_CART].notna().all()
    assert (bought[c.VIEW] <= bought[c.ADD_TO_CART]).all()
    assert (bought[c.ADD_TO_CART] <= bought[c.PURCHASE]).all()


def test_returns_follow_their_sale(small_generated: GeneratedShop) -> None:
    orders = small_generated.tables[c.ORDERS]
    returns = orders[orders[c.RETURNED]]
    assert 0.02 < len(returns) / (~orders[c.RETURNED]).sum() < 0.12
    sales = orders[~orders[c.RETURNED]]
    matched = returns.assign(sale_id="SO" + returns[c.ORDER_ID].str.slice(2)).merge(
        sales,
        left_on=["sale_id", c.ITEM_ID],
        right_on=[c.ORDER_ID, c.ITEM_ID],
        suffixes=("", "_sale"),
    )
    assert len(matched) == len(returns), "every return has its sale"
    assert (matched[c.ORDERED_AT] > matched[f"{c.ORDERED_AT}_sale"]).all()
    assert matched[c.CUSTOMER_ID].fillna("guest").equals(matched[f"{c.CUSTOMER_ID}_sale"].fillna("guest"))
    assert (matched[c.QUANTITY] == matched[f"{c.QUANTITY}_sale"]).all()


def test_guests_consent_and_membership_are_present(small_generated: GeneratedShop) -> None:
    customers = small_generated.tables[c.CUSTOMERS]
    assert 0.05 < 1 - customers[c.CONSENT_PERSONALIZATION].mean() < 0.25
    assert 0.25 < 1 - customers[c.CONSENT_MARKETING].mean() < 0.6
    assert 0.1 < customers[c.IS_MEMBER].mean() < 0.5
    assert customers.loc[customers[c.IS_MEMBER], c.MEMBER_SINCE].notna().all()
    assert customers.loc[~customers[c.IS_MEMBER], c.MEMBER_SINCE].isna().all()
    orders = small_generated.tables[c.ORDERS]
    assert 0.1 < orders[c.CUSTOMER_ID].isna().mean() < 0.35


def test_stock_runs_out_and_is_replenished(year_shop: GeneratedShop) -> None:
    stock = year_shop.tables[c.STOCK_HISTORY].sort_values([c.ITEM_ID, c.DATE])
    ran_out = stock.loc[stock[c.STOCK] == 0, c.ITEM_ID].unique()
    assert len(ran_out) >= 3
    after_zero = stock.groupby(c.ITEM_ID)[c.STOCK].shift(1).eq(0) & (stock[c.STOCK] > 0)
    assert after_zero.sum() >= len(ran_out) // 2, "items that run out come back in stock"


def test_complementary_items_are_bought_by_the_same_customers(year_shop: GeneratedShop) -> None:
    orders = year_shop.tables[c.ORDERS]
    products = year_shop.tables[c.PRODUCTS].set_index(c.ITEM_ID)
    sales = orders[~orders[c.RETURNED] & orders[c.CUSTOMER_ID].notna()]
    sales = sales.assign(
        category=products.loc[sales[c.ITEM_ID], c.CATEGORY].to_numpy(),
        collection=products.loc[sales[c.ITEM_ID], c.TAGS].str.extract(r"collection:([^;]+)")[0].to_numpy(),
    )
    buyers = sales[c.CUSTOMER_ID].nunique()

    # a necklace or pendant buyer goes on to the matching earrings, bracelet or ring
    in_collection = sales.dropna(subset=["collection"])
    anchors = in_collection[in_collection["category"].isin(["necklace", "pendant"])]
    matching = in_collection[in_collection["category"].isin(["earrings", "bracelet", "ring"])]
    anchors = anchors[[c.CUSTOMER_ID, "collection"]].drop_duplicates()
    matching = matching[[c.CUSTOMER_ID, "collection"]].drop_duplicates()
    observed = len(anchors.merge(matching)) / len(anchors)
    base_rate = matching.groupby("collection").size() / buyers
    by_chance = (base_rate.reindex(anchors["collection"]).fillna(0)).mean()
    assert observed > 2.5 * by_chance, f"matching collection: {observed:.3f} vs {by_chance:.3f} by chance"

    # and necklace or pendant buyers buy chains more often than other buyers
    per_customer = sales.groupby(c.CUSTOMER_ID)["category"].agg(set)
    anchor = per_customer.map(lambda cats: bool(cats & {"necklace", "pendant"}))
    chain = per_customer.map(lambda cats: "chain" in cats)
    lift = chain[anchor].mean() / chain[~anchor].mean()
    assert lift > 1.3, f"chain buyers among necklace/pendant buyers: lift {lift:.2f}"
