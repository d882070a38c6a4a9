"""The experiment records: who gets the challenger, which arm a price is on, round trips."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest

from storewise.experiments import (
    Experiment,
    ExperimentError,
    PriceTest,
    price_arm,
    start_experiment,
    start_price_test,
    variant_of,
)


def test_the_assignment_is_a_salted_hash_of_the_id_sticky_and_near_the_share() -> None:
    experiment = start_experiment("storewise-recommender", "1", "2", 0.2)
    ids = [f"C{i:06d}" for i in range(20_000)]
    variants = [variant_of(experiment, customer, True) for customer in ids]
    assert variants == [variant_of(experiment, customer, True) for customer in ids], "sticky"
    share = variants.count("challenger") / len(ids)
    assert abs(share - 0.2) < 4 * (0.2 * 0.8 / len(ids)) ** 0.5  # within 4 standard errors
    # worked out independently: the first 8 bytes of SHA-256("salt:id") as a fraction
    for customer in ids[:200]:
        digest = hashlib.sha256(f"{experiment.salt}:{customer}".encode()).digest()
        expected = "challenger" if int.from_bytes(digest[:8], "big") / 2**64 < 0.2 else "champion"
        assert variant_of(experiment, customer, True) == expected
    # another experiment's salt gives another split: last month's challenger group is not this month's
    other = start_experiment("storewise-recommender", "1", "2", 0.2)
    overlap = sum(
        a == b == "challenger"
        for a, b in zip(variants, (variant_of(other, i, True) for i in ids), strict=True)
    )
    assert overlap < 0.2 * 0.2 * len(ids) * 1.3


def test_guests_ineligible_customers_and_stopped_experiments_get_the_champion() -> None:
    experiment = start_experiment("storewise-recommender", "1", "2", 0.99)
    assert variant_of(experiment, None, True) == "champion"
    assert variant_of(experiment, "", True) == "champion"
    assert {variant_of(experiment, f"C{i}", False) for i in range(100)} == {"champion"}
    assert {variant_of(experiment.stopped(), f"C{i}", True) for i in range(100)} == {"champion"}
    assert {variant_of(None, f"C{i}", True) for i in range(100)} == {"champion"}


def test_records_round_trip_and_bad_starts_say_why() -> None:
    experiment = start_experiment("storewise-recommender", "3", "4", 0.5)
    assert Experiment.from_json(experiment.to_json()) == experiment
    test = start_price_test(["A", "B"], 0.04, date(2026, 11, 1), 28, 0.10)
    assert PriceTest.from_json(test.to_json()) == test
    assert (test.start, test.end) == ("2026-11-01", "2026-11-28")
    with pytest.raises(ExperimentError, match="--share"):
        start_experiment("m", "1", "2", 1.5)
    with pytest.raises(ExperimentError, match="is the champion"):
        start_experiment("m", "1", "1", 0.2)
    with pytest.raises(ExperimentError, match="max_daily_change"):
        start_price_test(["A"], 0.08, date(2026, 11, 1), 28, 0.10)  # 0.92 -> 1.08 is a 17% jump
    with pytest.raises(ExperimentError, match="--items"):
        start_price_test([], 0.04, date(2026, 11, 1), 28, 0.10)
    with pytest.raises(ExperimentError, match="unreadable"):
        Experiment.from_json('{"id": 1}')


def test_a_price_arm_depends_on_item_and_day_only_and_is_a_fair_coin() -> None:
    test = start_price_test(["A", "B"], 0.045, date(2026, 1, 1), 365, 0.10)
    days = [date.fromordinal(date(2026, 1, 1).toordinal() + offset) for offset in range(365)]
    arms = [price_arm(test, "A", day) for day in days]
    assert arms == [price_arm(test, "A", day) for day in days]
    assert 0.4 < arms.count("high") / len(arms) < 0.6
    assert arms != [price_arm(test, "B", day) for day in days], "items switch independently"
    assert test.active_on(date(2026, 6, 1))
    assert not test.active_on(date(2027, 1, 1))
    assert not test.stopped().active_on(date(2026, 6, 1))
