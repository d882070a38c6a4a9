"""Online experiments in the registry, and what the service does with them.

The records (storewise/experiments.py) live as one tag each on the registered models
`storewise-recommender` (a champion/challenger experiment, with the alias `challenger` on
the challenger's version for the MLflow UI) and `storewise-pricing` (a switchback price
test). Every replica of the service already polls the registry for its champion, so it
reads them on the same check: no state in any process, no other store to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from inference.pricing.policy import apply_ending
from inference.registry import NOT_THERE, TrackingUnavailableError
from storewise.experiments import (
    CHALLENGER_ALIAS,
    EXPERIMENT_TAG,
    PRICE_TEST_TAG,
    Experiment,
    ExperimentError,
    PriceTest,
    arm_multiplier,
    price_arm,
)


def _tags(client: MlflowClient, name: str) -> dict[str, str]:
    """The registered model's tags ({} when it is not registered); the tracking server down
    is `TrackingUnavailableError`, as for the champion."""
    try:
        return dict(client.get_registered_model(name).tags or {})
    except MlflowException as error:
        if error.error_code in NOT_THERE:
            return {}
        raise TrackingUnavailableError(str(error).splitlines()[0][:300]) from None
    except OSError as error:
        raise TrackingUnavailableError(str(error)[:300]) from None


def read_experiment(client: MlflowClient, name: str) -> Experiment | None:
    """The model's latest experiment (running or stopped), None if it never had one."""
    text = _tags(client, name).get(EXPERIMENT_TAG)
    return Experiment.from_json(text) if text else None


def read_price_test(client: MlflowClient, name: str) -> PriceTest | None:
    text = _tags(client, name).get(PRICE_TEST_TAG)
    return PriceTest.from_json(text) if text else None


def write_experiment(client: MlflowClient, experiment: Experiment) -> None:
    """One tag write (atomic for every reader); the alias follows a running challenger."""
    try:
        client.set_registered_model_tag(experiment.model, EXPERIMENT_TAG, experiment.to_json())
        if experiment.running:
            client.set_registered_model_alias(experiment.model, CHALLENGER_ALIAS, experiment.challenger)
        else:
            try:
                client.delete_registered_model_alias(experiment.model, CHALLENGER_ALIAS)
            except MlflowException as error:
                if error.error_code not in NOT_THERE:
                    raise
    except MlflowException as error:
        raise ExperimentError(f"cannot write the experiment to the registry: {error.message}") from None


def write_price_test(client: MlflowClient, name: str, test: PriceTest) -> None:
    try:
        client.set_registered_model_tag(name, PRICE_TEST_TAG, test.to_json())
    except MlflowException as error:
        raise ExperimentError(f"cannot write the price test to the registry: {error.message}") from None


@dataclass(frozen=True)
class TestPrices:
    """Base prices of one request after a running price test: the test's items priced by
    the day's arm (the same for everyone), the rest unchanged."""

    price: np.ndarray
    reason: np.ndarray
    arm: list[str | None]


def apply_price_test(
    test: PriceTest | None,
    day: date,
    item_ids: list[str],
    decided: dict[str, np.ndarray],
    bounds: tuple[np.ndarray, np.ndarray] | None,
    ending: float | None,
) -> TestPrices:
    """The day's test prices: base x (1 -/+ step) by the item's arm, kept inside `bounds`
    (the guardrails' floor and ceiling per item, when the pricing model has them) and
    rounded to the shop's ending. Nothing here depends on who asks."""
    price = np.asarray(decided["price"], float)
    reason = np.asarray(decided["reason"], object)
    arms: list[str | None] = [None] * len(item_ids)
    if test is None or not test.active_on(day):
        return TestPrices(price, reason, arms)
    tested = set(test.items)
    price, reason = price.copy(), reason.copy()
    for index, item in enumerate(item_ids):
        if item not in tested:
            continue
        arm = price_arm(test, item, day)
        low, high = (bounds[0][index], bounds[1][index]) if bounds is not None else (0.0, np.inf)
        value = np.array([min(max(price[index] * arm_multiplier(test, arm), low), high)])
        if ending is not None:
            value = apply_ending(value, np.array([low]), np.array([high]), ending)
        price[index] = round(float(value[0]), 2)
        arms[index] = arm
        reason[index] = (
            f"price test {test.id}: {arm} arm today ({arm_multiplier(test, arm) - 1:+.1%} on "
            f"{decided['price'][index]:.2f}); {reason[index]}"
        )
    return TestPrices(price, reason, arms)
