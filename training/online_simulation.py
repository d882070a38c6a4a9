"""A simulated customer population for proving the experiment machinery on the demo shop.

The demo generator knows what real shops never tell: each customer's hidden taste segment,
how much each segment likes each item, each item's popularity, conversion and true price
elasticity (intake/demo/). Here the customers of a generated shop answer recommendation
lists from those truths, so an experiment's report can be checked against the right
answer:

- a customer visits on a day with probability from their true activity; a visit shows the
  list their variant's recommender gives them (k items);
- they click an item with probability `click_rate` x how much their segment likes it
  (relative to the segment's average item, by true popularity) x a position discount, and
  buy a clicked item with its true purchase probability at its price (conversion x
  (price / reference price) ** elasticity); revenue is the price paid;
- the **true value** of a variant is the expected revenue per customer of its lists under
  these probabilities, computed exactly, so "the truly better recommender" is known before
  a single customer is simulated.

The population is rebuilt from the generator's settings (the same seeds give the same
customers and catalogue) and checked against the shop's tables. The assignment is the
service's own (`storewise.experiments.variant_of`), with a fresh salt per run. Also here:
a switchback price test run on the shop's true demand (`intake/demo/dynamics.py`), for the
elasticity estimator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from intake.demo.catalog import make_catalog
from intake.demo.customers import affinity, make_customers
from intake.demo.dynamics import ShopDynamics
from intake.demo.generate import GeneratorSettings
from storewise import columns as c
from storewise.experiments import CHALLENGER, Experiment, PriceTest, price_arm, variant_of
from storewise.shop import ShopPaths

POSITION_DISCOUNT = 0.85  # each place down the list is seen this much less


@dataclass(frozen=True)
class DemoTruth:
    """What the generator knows about customers and items (item order: the products table)."""

    customer_ids: np.ndarray
    eligible: np.ndarray  # consent to personalization: who can be in an experiment
    segment: np.ndarray
    visits_per_day: np.ndarray  # per customer
    liking: np.ndarray  # segments x items: relative click propensity (mean 1 per segment)
    buy: np.ndarray  # per item: purchase probability of a click at the list price
    price: np.ndarray  # per item: list price
    item_ids: np.ndarray


def load_truth(
    shop: ShopPaths, generated_with: GeneratorSettings, visits_per_year: float = 12.0
) -> DemoTruth:
    """The truths of a shop generated with `generated_with` (its seeds rebuild the hidden
    segments; the rebuilt customers must be the shop's, else the generator has changed)."""
    seeds = np.random.SeedSequence(generated_with.seed).spawn(6)
    catalog = make_catalog(generated_with.products, generated_with.days, np.random.default_rng(seeds[0]))
    start = pd.Timestamp(generated_with.end_date) - pd.Timedelta(days=generated_with.days - 1)
    population = make_customers(
        generated_with.customers, start, generated_with.days, np.random.default_rng(seeds[1])
    )
    customers = pd.read_parquet(shop.table(c.CUSTOMERS))
    if (
        not population.customers[c.CUSTOMER_ID].equals(customers[c.CUSTOMER_ID])
        or not (population.customers[c.REGION].to_numpy() == customers[c.REGION].to_numpy()).all()
    ):
        raise ValueError("the rebuilt population is not the shop's: generated with other settings?")
    products = pd.read_parquet(shop.table(c.PRODUCTS))
    truth = (
        pd.read_parquet(shop.ground_truth / "items.parquet").set_index(c.ITEM_ID).reindex(products[c.ITEM_ID])
    )
    popularity = truth["view_share"].to_numpy(float)
    raw = affinity(catalog) * popularity[None, :]
    liking = raw / raw.mean(axis=1, keepdims=True)
    price = products[c.LIST_PRICE].to_numpy(float)
    buy = np.minimum(
        0.9,
        truth["conversion"].to_numpy(float)
        * (price / truth["ref_price"].to_numpy(float)) ** truth["elasticity"].to_numpy(float),
    )
    activity = population.activity / population.activity.mean()
    return DemoTruth(
        customer_ids=customers[c.CUSTOMER_ID].astype(str).to_numpy(),
        eligible=customers[c.CONSENT_PERSONALIZATION].astype(bool).to_numpy(),
        segment=population.segment,
        visits_per_day=activity * visits_per_year / 365,
        liking=liking,
        buy=buy,
        price=price,
        item_ids=products[c.ITEM_ID].astype(str).to_numpy(),
    )


# -- recommenders as lists (customers x k item positions) --------------------------------


def popularity_lists(truth: DemoTruth, k: int) -> np.ndarray:
    """The same k most liked items (over all segments) for everyone."""
    overall = truth.liking.mean(axis=0)
    return np.tile(np.argsort(-overall, kind="stable")[:k], (len(truth.customer_ids), 1))


def taste_lists(truth: DemoTruth, k: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Each customer's k items their segment likes most; `noise` (log scale) blurs the
    ranking, making a weaker recommender."""
    rng = np.random.default_rng(seed)
    scores = np.log(truth.liking[truth.segment]) + noise * rng.standard_normal(
        (len(truth.customer_ids), truth.liking.shape[1])
    )
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def click_probabilities(truth: DemoTruth, lists: np.ndarray, click_rate: float) -> np.ndarray:
    discount = POSITION_DISCOUNT ** np.arange(lists.shape[1])
    liking = truth.liking[truth.segment[:, None], lists]
    return np.minimum(0.9, click_rate * liking * discount[None, :])


def true_value(truth: DemoTruth, lists: np.ndarray, click_rate: float) -> float:
    """Expected revenue per eligible customer per day of this recommender (exact)."""
    per_visit = (click_probabilities(truth, lists, click_rate) * truth.buy[lists] * truth.price[lists]).sum(
        axis=1
    )
    return float((truth.visits_per_day * per_visit)[truth.eligible].mean())


# -- one experiment, week by week --------------------------------------------------------


@dataclass
class Population:
    """Who is in the experiment and what each variant would show them."""

    truth: DemoTruth
    variant: np.ndarray  # "champion" / "challenger" per eligible customer
    click: np.ndarray  # eligible customers x k, of the list their variant shows
    buy: np.ndarray
    price: np.ndarray


def assign(
    truth: DemoTruth, champion: np.ndarray, challenger: np.ndarray, share: float, click_rate: float, salt: str
) -> Population:
    """Split the eligible customers as the service does (a new salt: a new experiment)."""
    experiment = Experiment("sim", "sim", "1", "2", share, salt, "2026-01-01T00:00:00Z")
    ids = truth.customer_ids[truth.eligible]
    variant = np.array([variant_of(experiment, str(customer), True) for customer in ids])
    lists = np.where((variant == CHALLENGER)[:, None], challenger[truth.eligible], champion[truth.eligible])
    eligible_truth = DemoTruth(
        ids,
        np.ones(len(ids), bool),
        truth.segment[truth.eligible],
        truth.visits_per_day[truth.eligible],
        truth.liking,
        truth.buy,
        truth.price,
        truth.item_ids,
    )
    return Population(
        eligible_truth,
        variant,
        click_probabilities(eligible_truth, lists, click_rate),
        truth.buy[lists],
        truth.price[lists],
    )


class Running:
    """An experiment's per-customer counts, advanced a number of days at a time."""

    def __init__(self, population: Population, seed: int) -> None:
        self.population = population
        self.rng = np.random.default_rng(seed)
        n, k = population.click.shape
        self.visits = np.zeros(n, np.int64)
        self.clicks = np.zeros(n, np.int64)
        self.purchases = np.zeros(n, np.int64)
        self.revenue = np.zeros(n)
        self.days = 0
        self.k = k

    def advance(self, days: int) -> None:
        p = self.population
        visits = self.rng.poisson(p.truth.visits_per_day * days)
        clicks = self.rng.binomial(visits[:, None], p.click)
        bought = self.rng.binomial(clicks, p.buy)
        self.visits += visits
        self.clicks += clicks.sum(axis=1)
        self.purchases += bought.sum(axis=1)
        self.revenue += (bought * p.price).sum(axis=1)
        self.days += days

    def table(self) -> pd.DataFrame:
        """`reports.experiment.per_customer`'s table: the customers shown a list so far."""
        seen = self.visits > 0
        p = self.population
        return pd.DataFrame(
            {
                "variant": p.variant[seen],
                "customer_id": p.truth.customer_ids[seen],
                "impressions": self.visits[seen] * self.k,
                "clicks": self.clicks[seen],
                "purchases": self.purchases[seen],
                "revenue": self.revenue[seen],
            }
        )


# -- a switchback price test on the true demand ------------------------------------------


def simulate_switchback(
    shop: ShopPaths, item_ids: list[str], step: float, days: int, seed: int
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Run the shop's true demand forward `days` from the end of its history with the test
    items switching between their reference price x (1 - step) and x (1 + step) by a
    switchback draw of its own (salted by the seed), every other item at its reference price, no promotions. The
    test items' daily rows (item, date, price, units, views, stock_out, arm) and their
    true elasticities."""
    dynamics, ids, first_day = ShopDynamics.load(shop.ground_truth)
    ids = ids.astype(str).to_numpy()
    positions = [int(np.flatnonzero(ids == item)[0]) for item in item_ids]
    test = PriceTest("sim", tuple(item_ids), step, f"switchback-{seed}", "2000-01-01", "2100-01-01", "")
    rng = np.random.default_rng(seed)
    reference = dynamics.items.ref_price.astype(float)
    rows = []
    for offset in range(days):
        day = first_day + offset
        today: date = dynamics.dates(day, 1)[0].date()
        prices = reference.copy()
        arms = {p: price_arm(test, ids[p], today) for p in positions}
        for p, arm in arms.items():
            prices[p] = reference[p] * (1 + step if arm == "high" else 1 - step)
        # plenty of stock: the test measures demand, not the supply chain
        dynamics.stock = np.maximum(dynamics.stock, 10_000)
        outcome = dynamics.step(day, prices, np.zeros(len(ids), bool), rng)
        rows += [
            (
                ids[p],
                pd.Timestamp(today),
                prices[p],
                int(outcome.units[p]),
                int(outcome.views[p]),
                bool(outcome.stocked_out[p]),
                arms[p],
            )
            for p in positions
        ]
    frame = pd.DataFrame(rows, columns=[c.ITEM_ID, c.DATE, c.PRICE, "units", "views", "stock_out", "arm"])
    truths = {ids[p]: float(dynamics.items.elasticity[p]) for p in positions}
    return frame, truths
