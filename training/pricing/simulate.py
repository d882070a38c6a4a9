"""The pricing simulator: the demo shop's true demand run forward under a policy.

Each run starts from the end of the generated history (stock, deliveries on their way,
the prices customers are used to) and steps `ShopDynamics` day by day, the same demand
that generated the history (whichever family it is), with the same seasons and
replenishment. Profit is margin on the units sold minus a holding cost on the stock left
at the end of each day (`simulation.holding_cost_per_year` of the unit cost a year): stock
that sits costs money, so marking it down can pay.

Every policy meets the same customers: a seed draws each day's views, each view's chance
to buy and its extra units, and each late delivery beforehand, and a view buys when its
draw is under the purchase probability at the price the policy charges (common random
numbers): differences are the policies', not luck's. Policies:

- `fixed`: the list price every day;
- `optimizer`: the fitted model's policy, refitted every `simulation.refit_every_days` on
  the history plus the simulated days it priced (a live shop retraining;
  `LearningOptimizer`), its demand level updated each day from the views the shop saw in
  the last week and its deliveries' promised days (what a live shop knows from its
  purchase orders: a late delivery comes after its promised day, and once that day has
  passed the policy falls back to `low_cover_days`);
- `oracle`: the best policy given the true demand, found by a search over policies under
  the same guardrails (period limit, floor, ceiling, endings) with stock and replenishment
  in play. The candidates know the true demand: the list price; steering to the true
  profit-maximizing price (with the category, where items substitute) and to 0.85-1.3
  times it, fast or slowly, with or without stretching the stock to the next delivery; a
  hi-lo cycle around it; and the policy's own rule fed the true demand, elasticity and
  delivery days (a late delivery's real day, or none), with and without markdowns of long
  stock. Each item (each category, where items substitute: their prices act on each
  other) gets the candidate that earned it most on these customers. That is the regret benchmark of the bandit-pricing literature (the
  best policy of a class in hindsight): no policy of the class can beat it, the fixed
  price is one of them, and a policy outside the class that beat it would show the
  search is too narrow (a test checks that none does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.demand import RECORDED, STOCK_OUT, STOCK_START, UNITS, VIEWS
from inference.pricing.model import PricingModel
from inference.pricing.policy import DELIVERY_COLUMN, decide_arrays, guardrailed, price_bounds, profit_target
from intake.demo.dynamics import DayDraws, ShopDynamics
from storewise import columns as c
from storewise.settings import PricingSettings
from storewise.shop import ShopPaths

POLICIES = ("fixed", "optimizer", "oracle")
TRACK_MULTIPLES = (0.85, 0.93, 1.0, 1.08, 1.18, 1.3)
STRETCH_MULTIPLES = (0.93, 1.0, 1.08, 1.18)
STRETCH_GRID = np.linspace(1.0, 1.6, 13)  # prices tried (x the steering price) to make stock last
SLOW_STEP = 0.03
HI_LO = (0.85, 1.06)  # a week: two days low, five days high, around the best price


@dataclass
class SimulationResult:
    summary: pd.DataFrame  # one row per policy
    daily: pd.DataFrame  # policy, day, item, price, units, stock
    oracle_choices: dict[str, int] = field(default_factory=dict)  # candidate -> items
    # policy, seed, item, cluster (the item's category where items substitute, else the
    # item itself: the unit a bootstrap resamples), profit
    item_profit: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class SoldDay:
    """One simulated day as the shop's records keep it: what a refit learns from."""

    day: int
    prices: np.ndarray
    units: np.ndarray
    views: np.ndarray
    stock_start: np.ndarray
    stocked_out: np.ndarray


@dataclass
class PolicyState:
    """What a policy sees when it sets today's prices."""

    step: int
    day: int
    dynamics: ShopDynamics
    prices: np.ndarray
    recent_views: list[np.ndarray]
    sold: list[SoldDay] = field(default_factory=list)  # the simulated days so far


Policy = Callable[[PolicyState], np.ndarray]


@dataclass
class World:
    """What every policy of one simulation shares."""

    shop: ShopPaths
    model: PricingModel
    truth: ShopDynamics
    positions: np.ndarray
    item_ids: pd.Series
    next_day: int
    list_price: np.ndarray
    cost: np.ndarray
    holding: np.ndarray  # per unit and day
    tracked: np.ndarray


@dataclass
class Run:
    """Per-item totals of one policy's run, and the tracked items' days."""

    profit: np.ndarray
    revenue: np.ndarray
    units: np.ndarray
    stockout_days: np.ndarray
    lost: np.ndarray
    holding: np.ndarray
    leftover: np.ndarray
    trace: list[tuple[int, str, float, int, int]] = field(default_factory=list)

    @classmethod
    def of(cls, totals: dict[str, np.ndarray]) -> Run:
        """A run from its per-item totals (named as in RUN_TOTALS)."""
        t = totals
        return cls(
            t["profit"], t["revenue"], t["units"], t["stockout_days"], t["lost"], t["holding"], t["leftover"]
        )


RUN_TOTALS = ("profit", "revenue", "units", "stockout_days", "lost", "holding", "leftover")


def load_world(shop: ShopPaths, model: PricingModel) -> World:
    truth, item_ids, next_day = ShopDynamics.load(shop.ground_truth)
    missing = [item for item in item_ids.astype(str) if item not in model.position]
    if missing:
        raise ValueError(f"the pricing model does not cover every item of the demo shop (e.g. {missing[0]})")
    positions = np.array([model.position[item] for item in item_ids.astype(str)], dtype=np.int64)
    cost = truth.items.unit_cost.astype(float)
    rate = model.settings.simulation.holding_cost_per_year
    return World(
        shop=shop,
        model=model,
        truth=truth,
        positions=positions,
        item_ids=item_ids,
        next_day=next_day,
        list_price=model.arrays["list_price"][positions],
        cost=cost,
        holding=cost * rate / 365,
        tracked=np.argsort(-model.arrays["daily_units_at_reference"][positions])[:3],
    )


def draws_for(world: World, days: int, seed: int) -> list[DayDraws]:
    rng = np.random.default_rng(seed)
    return [world.truth.draw_day(world.next_day + step, rng) for step in range(days)]


def run_policy(world: World, policy: Policy, draws: list[DayDraws], record: bool = False) -> Run:
    dynamics = world.truth.fresh()  # the state at the end of the history, never stepped
    n = len(world.list_price)
    prices, recent, sold = world.list_price.copy(), list[np.ndarray](), list[SoldDay]()
    run = Run.of({name: np.zeros(n) for name in RUN_TOTALS})
    for step, today in enumerate(draws):
        day = world.next_day + step
        prices = policy(PolicyState(step, day, dynamics, prices, recent, sold))
        outcome = dynamics.step_drawn(day, prices, today)
        recent = [*recent[-6:], outcome.views]
        sold.append(
            SoldDay(day, prices, outcome.units, outcome.views, outcome.stock_start, outcome.stocked_out)
        )
        holding = world.holding * dynamics.stock
        run.profit += outcome.units * (prices - world.cost) - holding
        run.revenue += outcome.units * prices
        run.units += outcome.units
        run.stockout_days += outcome.stocked_out
        run.lost += outcome.wanted_units - outcome.units
        run.holding += holding
        if record:
            for item in world.tracked:
                run.trace.append(
                    (
                        step,
                        str(world.item_ids.iloc[item]),
                        float(prices[item]),
                        int(outcome.units[item]),
                        int(dynamics.stock[item]),
                    )
                )
    run.leftover = dynamics.stock.astype(float)
    return run


def simulate(
    shop: ShopPaths,
    model: PricingModel,
    days: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
    refit: Refit | None = None,
) -> SimulationResult:
    """With `refit` (the run's fit, given the simulated days' demand rows to add to the
    shop's history) and `simulation.refit_every_days`, the optimizer is refitted as a live
    shop retrains: on the history plus the simulated days it priced."""
    say = progress or (lambda _: None)
    world = load_world(shop, model)
    draws = draws_for(world, days, seed)
    runs = {}
    every = model.settings.simulation.refit_every_days
    optimizer: Policy = (
        LearningOptimizer(world, refit, every)
        if refit is not None and every
        else lambda state: optimizer_prices(world, state, world.model, world.positions)
    )
    for name, policy in (
        ("fixed", lambda state: world.list_price),
        ("optimizer", optimizer),
    ):
        say(f"simulating: {name}")
        runs[name] = run_policy(world, policy, draws, record=True)
    candidates = {}
    for name, candidate in oracle_candidates(world).items():
        say(f"oracle search: {name}")
        candidates[name] = run_policy(world, candidate, draws, record=True)
    choice = choose_candidates(world, {name: run.profit for name, run in candidates.items()})
    runs["oracle"] = combine(world, list(candidates.values()), choice)
    names = list(candidates)
    choices = pd.Series([names[i] for i in choice]).value_counts().to_dict()
    return _result(world, runs, seed, days, {str(k): int(v) for k, v in choices.items()})


def combine(world: World, runs: list[Run], choice: np.ndarray) -> Run:
    """The oracle's run: each item as its chosen candidate ran it (items, or categories
    where items substitute, do not act on each other, and meet the same customers)."""
    items = np.arange(len(choice))

    def pick(name: str) -> np.ndarray:
        return np.stack([getattr(run, name) for run in runs])[choice, items]

    combined = Run.of({name: pick(name) for name in RUN_TOTALS})
    tracked = {str(world.item_ids.iloc[item]): int(choice[item]) for item in world.tracked}
    combined.trace = [
        entry for index, run in enumerate(runs) for entry in run.trace if tracked.get(entry[1]) == index
    ]
    return combined


def _result(
    world: World, runs: dict[str, Run], seed: int, days: int, choices: dict[str, int]
) -> SimulationResult:
    rows, daily = [], []
    for policy, run in runs.items():
        rows.append(
            {
                "policy": policy,
                "seed": seed,
                "days": days,
                "profit": float(run.profit.sum()),
                "revenue": float(run.revenue.sum()),
                "units": float(run.units.sum()),
                "stockout_item_days": float(run.stockout_days.sum()),
                "lost_units": float(run.lost.sum()),
                "holding_cost": float(run.holding.sum()),
                "leftover_stock_units": float(run.leftover.sum()),
                "leftover_stock_value": float(np.sum(run.leftover * world.cost)),
            }
        )
        daily += [(policy, *entry) for entry in run.trace]
    summary = pd.DataFrame(rows)
    oracle = summary.loc[summary["policy"] == "oracle", "profit"].iloc[0]
    summary["profit_share_of_oracle"] = summary["profit"] / oracle
    summary["regret"] = oracle - summary["profit"]
    return SimulationResult(
        summary,
        pd.DataFrame(daily, columns=["policy", "day", "item_id", "price", "units", "stock"]),
        choices,
        _item_profit(world, runs, seed),
    )


def _item_profit(world: World, runs: dict[str, Run], seed: int) -> pd.DataFrame:
    """Each policy's profit per item: items are independent of each other except where
    they substitute, so the category is the resampling cluster there."""
    n = len(world.list_price)
    substitutes = world.truth.shop.demand_family == "substitution"
    cluster = world.truth.items.category.astype(np.int64) if substitutes else np.arange(n)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "policy": policy,
                    "seed": seed,
                    "item_id": world.item_ids.astype(str).to_numpy(),
                    "cluster": cluster,
                    "profit": run.profit,
                }
            )
            for policy, run in runs.items()
        ],
        ignore_index=True,
    )


# the simulated days' rows of the demand table -> the model refitted on the history plus them
Refit = Callable[[pd.DataFrame], PricingModel]


class LearningOptimizer:
    """The optimizer as a live shop runs it: every `every` days its model is refitted
    (`refit`) on the shop's history with the simulated days so far appended (their prices,
    units, views and stock-outs, as the shop's records would hold them), so the prices it
    tried become evidence: the elasticities move with what they sold, and the range it
    trusts widens with the prices it sold at."""

    def __init__(self, world: World, refit: Refit, every: int) -> None:
        self.world, self.refit, self.every = world, refit, every
        self.model, self.positions = world.model, world.positions

    def __call__(self, state: PolicyState) -> np.ndarray:
        if state.step and state.step % self.every == 0:
            self.model = self.refit(sold_rows(self.world, state.sold))
            self.positions = np.array(
                [self.model.position[item] for item in self.world.item_ids.astype(str)], dtype=np.int64
            )
        return optimizer_prices(self.world, state, self.model, self.positions)


def sold_rows(world: World, sold: list[SoldDay]) -> pd.DataFrame:
    """The simulated days as rows of the features' demand table (no promotions; the
    columns a refit does not read are left empty)."""
    start = pd.Timestamp(world.truth.shop.start)
    n = len(world.item_ids)
    items = world.item_ids.astype(str).to_numpy()
    return pd.DataFrame(
        {
            c.ITEM_ID: np.tile(items, len(sold)),
            c.DATE: np.repeat([start + pd.Timedelta(days=day.day) for day in sold], n).astype(
                "datetime64[us]"
            ),
            UNITS: np.concatenate([day.units for day in sold]).astype(np.int32),
            c.PRICE: np.concatenate([day.prices for day in sold]),
            c.LIST_PRICE: np.tile(world.list_price, len(sold)),
            c.PROMO: False,
            RECORDED: True,
            STOCK_START: pd.array(np.concatenate([day.stock_start for day in sold]), dtype="Int32"),
            # as the features flag them: no stock at the start, or the day sold the last unit
            STOCK_OUT: np.concatenate(
                [(day.stock_start == 0) | (day.units >= day.stock_start) for day in sold]
            ),
            VIEWS: np.concatenate([day.views for day in sold]).astype(np.int32),
        }
    )


def optimizer_prices(
    world: World, state: PolicyState, model: PricingModel, positions: np.ndarray
) -> np.ndarray:
    """`model`'s prices for today (`positions`: the world's items in the model)."""
    overrides: dict[str, np.ndarray] = {
        "current_price": state.prices,
        "stock": state.dynamics.stock.astype(float),
        # what the shop's open purchase orders promise (a late delivery comes after it)
        DELIVERY_COLUMN: state.dynamics.days_to_delivery(state.day),
    }
    if state.recent_views and model.exposure == "views":
        base_rate = model.items["base_rate"].to_numpy(float)[positions]
        views = np.mean(state.recent_views, axis=0)
        overrides["daily_units"] = base_rate * views * model.price_factor(positions, state.prices)
    decided = decide_arrays(
        model.states(positions, **overrides),
        model.settings,
        model.currency,
        model.period,
        reasons=False,
    )
    return decided["price"]


# -- the oracle's search ---------------------------------------------------------------


def true_elasticity(truth: ShopDynamics, prices: np.ndarray) -> np.ndarray:
    """The true own-price elasticity at these prices, once customers are used to them."""
    e = truth.items.elasticity.astype(float)
    if truth.shop.demand_family != "linear":
        return e
    ratio = prices / truth.items.ref_price
    with np.errstate(divide="ignore", invalid="ignore"):
        local = e * ratio / (1 + e * (ratio - 1))
    return np.where(1 + e * (ratio - 1) > 0, local, -50.0)


def true_state(world: World, dynamics: ShopDynamics, day: int, prices: np.ndarray) -> dict[str, np.ndarray]:
    """The policy's inputs with the truth in them: the true elasticity (no uncertainty),
    the true expected demand today, the true cost, the category as the shelf where items
    substitute."""
    n = len(prices)
    elasticity = true_elasticity(dynamics, prices)
    state = {
        "item_id": world.item_ids.astype(str).to_numpy(),
        "current_price": prices,
        "list_price": world.list_price,
        "unit_cost": world.cost,
        "stock": dynamics.stock.astype(float),
        "elasticity": elasticity,
        "low_90": elasticity,
        "high_90": elasticity,
        "item_evidence": np.ones(n, bool),
        "daily_units": dynamics.expected_units(day, prices, np.zeros(n, bool)),
        "demand_change": np.full(n, np.nan),
        DELIVERY_COLUMN: dynamics.days_to_delivery(day, promised=False),
    }
    if dynamics.shop.demand_family == "substitution":
        category = dynamics.items.category.astype(np.int64)
        others = np.bincount(category)[category] - 1
        state["shelf"] = category
        state["cross_elasticity"] = np.where(
            others > 0, dynamics.shop.substitution / np.maximum(others, 1), 0.0
        )
    return state


def best_static_prices(world: World) -> np.ndarray:
    """The true profit-maximizing prices ignoring stock: (cost + choke) / 2 for linear
    demand, else cost e / (1 + e) (for the category together where items substitute)."""
    truth, settings = world.truth, world.model.settings
    state = true_state(world, truth, world.next_day, world.list_price)
    floor, ceiling = price_bounds(state, settings)
    if truth.shop.demand_family == "linear":
        e = truth.items.elasticity
        choke = truth.items.ref_price * (1 - 1 / e)
        return np.clip((world.cost + choke) / 2, floor, ceiling)
    state["elasticity"] = truth.items.elasticity.astype(float)
    return profit_target(state, settings)


def stretch_prices(world: World, state: PolicyState, price: np.ndarray) -> np.ndarray:
    """The lowest price from `price` up that makes the stock last (in expectation) until
    the next delivery arrives (or a new order's lead time, with none on the way)."""
    dynamics = state.dynamics
    arrival = dynamics.days_to_delivery(state.day, promised=False)
    days_left = np.where(np.isfinite(arrival), arrival, dynamics.items.lead_days).clip(1, None)
    no_promo = np.zeros(len(price), bool)
    chosen = price * STRETCH_GRID[-1]
    for multiple in STRETCH_GRID[::-1]:
        lasts = dynamics.stock >= days_left * dynamics.expected_units(state.day, price * multiple, no_promo)
        chosen = np.where(lasts, price * multiple, chosen)
    return chosen


def oracle_candidates(world: World) -> dict[str, Policy]:
    settings = world.model.settings
    best = best_static_prices(world)
    no_markdowns = settings.model_copy(
        update={"inventory": settings.inventory.model_copy(update={"high_cover_days": 1e12})}
    )

    def steer(target: np.ndarray, step: float | None = None, stretch: bool = False) -> Policy:
        def policy(state: PolicyState) -> np.ndarray:
            truth = true_state(world, state.dynamics, state.day, state.prices)
            floor, ceiling = price_bounds(truth, settings)
            wanted = (
                target
                if step is None
                else np.clip(target, state.prices * (1 - step), state.prices * (1 + step))
            )
            if stretch:
                wanted = stretch_prices(world, state, wanted)
            return guardrailed(wanted, state.prices, floor, ceiling, settings.guardrails)

        return policy

    def rule(rule_settings: PricingSettings, deliveries: bool = True) -> Policy:
        def policy(state: PolicyState) -> np.ndarray:
            truth = true_state(world, state.dynamics, state.day, state.prices)
            if not deliveries:
                truth[DELIVERY_COLUMN] = np.full(len(state.prices), np.nan)
            return decide_arrays(truth, rule_settings, reasons=False)["price"]

        return policy

    def hi_lo(state: PolicyState) -> np.ndarray:
        multiple = HI_LO[0] if state.step % 7 < 2 else HI_LO[1]
        return steer(best * multiple)(state)

    candidates: dict[str, Policy] = {"list price": lambda state: world.list_price}
    candidates |= {f"steer to {m:g} x best": steer(best * m) for m in TRACK_MULTIPLES}
    candidates |= {
        f"steer to {m:g} x best, stock stretched": steer(best * m, stretch=True) for m in STRETCH_MULTIPLES
    }
    candidates["steer slowly to best"] = steer(best, SLOW_STEP)
    candidates["hi-lo around best"] = hi_lo
    candidates["rule on the truth"] = rule(settings)
    candidates["rule on the truth, no markdowns"] = rule(no_markdowns)
    # the optimizer's rule where a delivery's day is unknown: short stock lasts low_cover_days
    candidates["rule on the truth, no delivery dates"] = rule(settings, deliveries=False)
    return candidates


def choose_candidates(world: World, earned: dict[str, np.ndarray]) -> np.ndarray:
    """Per item, the index of the candidate that earned most; where items substitute, one
    candidate for the whole category (its items' prices act on each other)."""
    profits = np.stack(list(earned.values()))  # candidates x items
    if world.truth.shop.demand_family != "substitution":
        return profits.argmax(axis=0)
    category = world.truth.items.category.astype(np.int64)
    by_category = np.stack([np.bincount(category, weights=row) for row in profits])
    return by_category.argmax(axis=0)[category]


def paired_gain(item_profit: pd.DataFrame, samples: int, seed: int) -> dict[str, float]:
    """The optimizer's profit minus the fixed price's, summed over seeds, as a share of the
    oracle's profit, with a paired bootstrap 90% interval over resampled clusters (items;
    categories where items substitute): the same resampled items for both policies."""
    totals = item_profit.pivot_table(index="cluster", columns="policy", values="profit", aggfunc="sum")
    optimizer, fixed, oracle = (totals[name].to_numpy(float) for name in ("optimizer", "fixed", "oracle"))
    rng = np.random.default_rng(seed)
    resampled = rng.integers(len(totals), size=(samples, len(totals)))
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = (optimizer[resampled].sum(axis=1) - fixed[resampled].sum(axis=1)) / oracle[resampled].sum(
            axis=1
        )
        shares = optimizer[resampled].sum(axis=1) / oracle[resampled].sum(axis=1)
    low, high = np.nanquantile(gains, [0.05, 0.95])
    share_low, share_high = np.nanquantile(shares, [0.05, 0.95])
    return {
        "optimizer_minus_fixed_share": float((optimizer.sum() - fixed.sum()) / oracle.sum()),
        "optimizer_minus_fixed_share_low": float(low),
        "optimizer_minus_fixed_share_high": float(high),
        "optimizer_share_low": float(share_low),
        "optimizer_share_high": float(share_high),
        "clusters": float(len(totals)),
    }
