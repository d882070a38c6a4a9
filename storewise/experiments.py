"""The record of an online experiment, and who gets what: shared by the service, the CLI,
the reports and the simulator.

Two kinds, each stored as ONE JSON tag on its registered model in the MLflow registry
(`storewise-recommender` / `storewise-pricing`), the store every replica of the service
already reads for its champion: one tag is one atomic write, so a replica never reads half
an experiment, and no process holds state of its own.

- **A recommender experiment** (`Experiment`): a challenger version answers a `share` of
  the customers. A customer's variant is a pure function of the experiment's salt and the
  customer id (`variant_of`): the same on every request, worker and replica, with nothing
  to look up. The salt is new for every experiment, so the customers who met last month's
  challenger are not this month's by construction.
- **A price test** (`PriceTest`): switchback over time, never by customer. Each test item
  alternates between a lower and a higher test price by day, the day's arm a pure function
  of the salt, the item and the date (`price_arm`), the same for everyone who asks that day.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Literal

from storewise.errors import StorewiseError

EXPERIMENT_TAG = "storewise.experiment"
PRICE_TEST_TAG = "storewise.price_test"
CHALLENGER_ALIAS = "challenger"
# MLflow keeps a tag value up to 5,000 characters (registered-model tags)
MAX_TAG_CHARS = 5000
MAX_TEST_ITEMS = 50

Variant = Literal["champion", "challenger"]
Status = Literal["running", "stopped"]
CHAMPION: Variant = "champion"
CHALLENGER: Variant = "challenger"
LOW, HIGH = "low", "high"


class ExperimentError(StorewiseError):
    """An experiment cannot be started, read or stopped; the message says why."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix: str) -> str:
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def unit_hash(salt: str, *parts: str) -> float:
    """A number in [0, 1) from the salt and the parts, uniform over salts and ids (SHA-256),
    identical in every process: the assignment needs no shared state beyond the salt."""
    digest = hashlib.sha256(":".join((salt, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Experiment:
    """Champion against a challenger version on live traffic."""

    id: str
    model: str  # registered model name
    champion: str  # the champion version when it started (the report compares these two)
    challenger: str
    share: float  # of the eligible customers, on the challenger
    salt: str
    started_at: str
    status: Status = "running"
    stopped_at: str | None = None
    note: str = ""

    @property
    def running(self) -> bool:
        return self.status == "running"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Experiment:
        try:
            values = json.loads(text)
            experiment = cls(**values)
        except (ValueError, TypeError) as error:
            raise ExperimentError(f"the experiment record in the registry is unreadable: {error}") from None
        return experiment

    def stopped(self) -> Experiment:
        return replace(self, status="stopped", stopped_at=now_iso())


def start_experiment(model: str, champion: str, challenger: str, share: float) -> Experiment:
    if not 0 < share < 1:
        raise ExperimentError(f"--share must be between 0 and 1 (exclusive), not {share}")
    if challenger == champion:
        raise ExperimentError(f"version {challenger} is the champion: a challenger must be another version")
    return Experiment(
        id=new_id("exp"),
        model=model,
        champion=champion,
        challenger=challenger,
        share=share,
        salt=secrets.token_hex(16),
        started_at=now_iso(),
    )


def variant_of(experiment: Experiment | None, customer_id: str | None, eligible: bool) -> Variant:
    """Which model answers this customer: the challenger for `share` of the eligible
    customers of a running experiment (by the salted hash of the id), else the champion.
    Guests and customers the champion may not personalize for are never eligible."""
    if experiment is None or not experiment.running or not eligible or not customer_id:
        return CHAMPION
    return CHALLENGER if unit_hash(experiment.salt, customer_id) < experiment.share else CHAMPION


@dataclass(frozen=True)
class PriceTest:
    """A switchback price test: each item alternates by day between its base price x
    (1 - step) and x (1 + step), within the guardrails, for every customer alike."""

    id: str
    items: tuple[str, ...]
    step: float
    salt: str
    start: str  # first day, ISO date in the shop's time zone
    end: str  # last day, inclusive
    started_at: str
    status: Status = "running"
    stopped_at: str | None = None
    arms: tuple[str, ...] = field(default=(LOW, HIGH))

    def to_json(self) -> str:
        values = asdict(self)
        text = json.dumps(values, separators=(",", ":"), sort_keys=True)
        if len(text) > MAX_TAG_CHARS:
            raise ExperimentError(
                f"the price test does not fit in a registry tag ({len(text)} characters); test fewer items"
            )
        return text

    @classmethod
    def from_json(cls, text: str) -> PriceTest:
        try:
            values = json.loads(text)
            values["items"] = tuple(values["items"])
            values["arms"] = tuple(values.get("arms", (LOW, HIGH)))
            return cls(**values)
        except (ValueError, TypeError, KeyError) as error:
            raise ExperimentError(f"the price test record in the registry is unreadable: {error}") from None

    def active_on(self, day: date) -> bool:
        return self.status == "running" and self.start <= day.isoformat() <= self.end

    def stopped(self) -> PriceTest:
        return replace(self, status="stopped", stopped_at=now_iso())


def price_arm(test: PriceTest, item_id: str, day: date) -> str:
    """The day's arm of an item: a fair coin per (item, day) from the salt. No customer
    argument: a price test never randomizes by customer."""
    return HIGH if unit_hash(test.salt, item_id, day.isoformat()) < 0.5 else LOW


def arm_multiplier(test: PriceTest, arm: str) -> float:
    return 1 + test.step if arm == HIGH else 1 - test.step


def start_price_test(
    items: list[str], step: float, first_day: date, days: int, max_daily_change: float
) -> PriceTest:
    """A new price test; the step must keep the switch from one arm to the other within the
    guardrail on the daily change (a rise from 1 - step to 1 + step)."""
    if not items:
        raise ExperimentError("--items: name at least one item to test")
    if len(items) > MAX_TEST_ITEMS:
        raise ExperimentError(f"--items: at most {MAX_TEST_ITEMS} items per price test, not {len(items)}")
    if not 0 < step < 0.5:
        raise ExperimentError(f"--step must be between 0 and 0.5, not {step}")
    swing = 2 * step / (1 - step)
    if swing > max_daily_change + 1e-12:
        raise ExperimentError(
            f"--step {step}: switching arms would move a price {swing:.1%} in a day, above the "
            f"guardrail's max_daily_change {max_daily_change:.0%} (config/pricing.yaml); use a step "
            f"of at most {max_daily_change / (2 + max_daily_change):.3f}"
        )
    if days < 2:
        raise ExperimentError(f"--days must be at least 2, not {days}")
    last = date.fromordinal(first_day.toordinal() + days - 1)
    return PriceTest(
        id=new_id("price"),
        items=tuple(dict.fromkeys(items)),
        step=step,
        salt=secrets.token_hex(16),
        start=first_day.isoformat(),
        end=last.isoformat(),
        started_at=now_iso(),
    )
