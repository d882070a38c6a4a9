"""The experiment machinery proven on the demo shop's truth: repeated simulated experiments
(training/online_simulation.py) judged by the experiment report (reports/experiment.py).
It sits in benchmarks/ because it needs both (reports may not import training).

- **Picks the truly better recommender**: champion and challenger lists whose true values
  differ; over runs, how often the report decides "promote" for a truly better challenger
  (or "stop" for a worse one), and how often it picks the wrong one.
- **A/A**: the champion against itself; how often the report declares a difference (its
  interval excludes zero) — at most about 1 - confidence if the statistics are right.
- **Switchback**: repeated price tests on the true demand; how often the estimated
  interval covers the item's true elasticity.
Every rate comes with a Wilson interval over the runs.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm
from tqdm import tqdm

from reports.experiment import analyze
from storewise.settings import ExperimentSettings
from storewise.shop import ShopPaths
from training.online_simulation import DemoTruth, Running, assign, simulate_switchback, true_value
from training.pricing.switchback import estimate


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class RunOutcome:
    action: str  # promote, stop, or keep running (undecided at max_days)
    declared_difference: bool  # the decision's interval excludes zero
    days: int
    relative: float | None


def run_experiment(
    truth: DemoTruth,
    champion: np.ndarray,
    challenger: np.ndarray,
    settings: ExperimentSettings,
    *,
    share: float,
    click_rate: float,
    max_days: int,
    look_every: int,
    seed: int,
) -> RunOutcome:
    """One simulated experiment, read every `look_every` days until it decides."""
    running = Running(assign(truth, champion, challenger, share, click_rate, f"run-{seed}"), seed)
    result = None
    while running.days < max_days:
        running.advance(look_every)
        result = analyze(running.table(), running.days, settings)
        if result.decision.action != "keep running":
            break
    assert result is not None
    decision = result.decision
    declared = (
        decision.action != "keep running"
        and decision.difference is not None
        and (decision.difference.low > 0 or decision.difference.high < 0)
    )
    return RunOutcome(decision.action, declared, running.days, decision.relative)


@dataclass(frozen=True)
class Rates:
    runs: int
    true_effect: float  # challenger's true value / champion's - 1
    actions: dict[str, int]
    correct: int  # promote a better challenger, stop a worse one (A/A: no declared difference)
    wrong: int  # the opposite pick (A/A: a declared difference)
    declared: int
    median_days: float

    def rate(self, count: int) -> tuple[float, float, float]:
        low, high = wilson(count, self.runs)
        return count / self.runs, low, high


def experiment_rates(
    truth: DemoTruth,
    champion: np.ndarray,
    challenger: np.ndarray,
    settings: ExperimentSettings,
    *,
    runs: int,
    share: float = 0.5,
    click_rate: float = 0.05,
    max_days: int = 84,
    look_every: int = 7,
    seed: int = 0,
    progress: bool = False,
) -> Rates:
    effect = true_value(truth, challenger, click_rate) / true_value(truth, champion, click_rate) - 1
    outcomes = [
        run_experiment(
            truth,
            champion,
            challenger,
            settings,
            share=share,
            click_rate=click_rate,
            max_days=max_days,
            look_every=look_every,
            seed=seed + run,
        )
        for run in tqdm(range(runs), desc="simulated experiments", disable=not progress)
    ]
    actions = Counter(outcome.action for outcome in outcomes)
    declared = sum(outcome.declared_difference for outcome in outcomes)
    if abs(effect) < 1e-12:  # A/A
        correct, wrong = runs - declared, declared
    elif effect > 0:
        correct, wrong = (
            actions["promote"],
            sum(o.declared_difference and o.action == "stop" for o in outcomes),
        )
    else:
        correct = sum(o.action == "stop" for o in outcomes)
        wrong = actions["promote"]
    return Rates(
        runs, effect, dict(actions), correct, wrong, declared, float(np.median([o.days for o in outcomes]))
    )


@dataclass(frozen=True)
class Coverage:
    runs: int
    covered: int
    median_width: float
    median_error: float
    truth: dict[str, float]


def switchback_coverage(
    shop: ShopPaths,
    item_ids: list[str],
    *,
    step: float,
    days: int,
    runs: int,
    confidence: float = 0.90,
    seed: int = 0,
) -> Coverage:
    """How often a switchback test's interval covers each item's true elasticity."""
    covered, widths, errors = 0, [], []
    truths: dict[str, float] = {}
    trials = 0
    for run in range(runs):
        frame, truths = simulate_switchback(shop, item_ids, step, days, seed + run)
        for item, rows in frame.groupby("item_id"):
            found = estimate(rows, confidence)
            if found is None:
                continue
            trials += 1
            covered += int(found.low <= truths[str(item)] <= found.high)
            widths.append(found.high - found.low)
            errors.append(found.elasticity - truths[str(item)])
    return Coverage(trials, covered, float(np.median(widths)), float(np.median(np.abs(errors))), truths)
