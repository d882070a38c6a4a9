"""What a worker serves: the champion models, the shop's settings and rules, and reloading.

A `Loaded` snapshot is immutable; a request takes the current snapshot once and uses it to
the end. A reload builds a new snapshot beside the old one and swaps the reference, so
requests in flight finish on the models they started with and none fails.

What a worker does when something is wrong (README, "What the service guarantees"):
- no recommender champion, or its bundle cannot be read, at start: the worker starts *not
  ready*: `/readyz` is 503 and every endpoint a 503 with the reason, and the watcher keeps
  looking (`storewise serve` stops at once instead, with that reason);
- no pricing champion (none passed the gate): list prices (`serving/list_prices.py`), said
  in every answer, until one is promoted;
- the tracking server unreachable during a reload check: the models loaded stay, one
  warning is logged for the outage and one line when it is reachable again;
- a new champion whose bundle is missing or broken: the models loaded stay, one error is
  logged per broken version.
Bundles are read from a local cache, one copy per model version (`inference.registry`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Literal

from inference.experiments import read_experiment, read_price_test
from inference.pricing.model import PricingModel
from inference.recommender.answers import Recommendations
from inference.registry import (
    PRICING,
    RECOMMENDER,
    TrackingUnavailableError,
    configure,
    find_champion,
    load_champion,
)
from serving.list_prices import ListPrices
from storewise.config import CONFIG_DIR
from storewise.erasures import ERASURES, erased_hashes, hashed, salt_of
from storewise.experiments import Experiment, ExperimentError, PriceTest
from storewise.service_settings import ServiceSettings
from storewise.settings import LoyaltySettings, load_loyalty_settings
from storewise.shop import ShopPaths, ShopSettings

log = logging.getLogger("storewise.serving")
PriceSource = Literal["pricing_model", "list_prices"]


class NotReadyError(RuntimeError):
    """The worker has no models to answer with; the message says why."""


@dataclass(frozen=True)
class Loaded:
    recommendations: Recommendations
    pricing: PricingModel | ListPrices
    recommender_version: str
    pricing_version: str | None
    loaded_at: str
    # a running recommender experiment and its challenger, loaded (None: everyone on the champion)
    experiment: Experiment | None = None
    challenger: Recommendations | None = None
    # a switchback price test (its days decide whether it applies)
    price_test: PriceTest | None = None

    @property
    def price_source(self) -> PriceSource:
        return "list_prices" if self.pricing_version is None else "pricing_model"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class ServingState:
    def __init__(self, settings: ServiceSettings) -> None:
        self.config = settings
        self.shop = ShopPaths(settings.shop_dir)
        self.settings: ShopSettings = self.shop.settings()
        self.loyalty: LoyaltySettings = load_loyalty_settings(CONFIG_DIR)
        self._lock = threading.Lock()
        self._erased: set[str] = set()
        self._erased_stamp: float | None = None
        self._salt: str | None = None
        self.current: Loaded | None = None
        self.not_ready: str | None = "starting"
        self.tracking_down_since: str | None = None
        self.broken: dict[tuple[str, str], str] = {}
        self.reload_if_changed()
        if self.current is not None:
            log.info(
                "serving recommender v%s and %s for %s",
                self.current.recommender_version,
                f"pricing v{self.current.pricing_version}"
                if self.current.pricing_version
                else "list prices (no pricing champion)",
                self.settings.name,
            )

    def require(self) -> Loaded:
        """The snapshot to answer with; `NotReadyError` (a 503) when there is none."""
        snapshot = self.current
        if snapshot is None:
            raise NotReadyError(f"not ready: {self.not_ready}")
        return snapshot

    def is_erased(self, customer_id: str) -> bool:
        """Whether the customer asked to be erased (`storewise erase`); the list is re-read
        as soon as the file changes, so personalization stops at once."""
        path = self.shop.root / ERASURES
        try:
            stamp: float | None = path.stat().st_mtime
        except FileNotFoundError:
            stamp = None
        if stamp != self._erased_stamp:
            self._erased = erased_hashes(self.shop.root)
            self._erased_stamp = stamp
        if not self._erased:
            return False
        if self._salt is None:
            self._salt = salt_of(self.shop)  # written once per shop, by the first erasure
        return hashed(customer_id, self._salt) in self._erased

    # -- reloading ------------------------------------------------------------------

    def champions(self) -> tuple[str | None, str | None]:
        client = configure()
        return find_champion(client, RECOMMENDER), find_champion(client, PRICING)

    def experiments(self) -> tuple[Experiment | None, PriceTest | None]:
        """The running experiment and price test in the registry (what every replica reads);
        an unreadable record is an alarm, not a reason to stop serving."""
        client = configure()
        found: list[Experiment | PriceTest | None] = []
        for name, read in ((RECOMMENDER, read_experiment), (PRICING, read_price_test)):
            try:
                record = read(client, name)
            except ExperimentError as error:
                self.broken[(name, "experiment")] = str(error)
                record = None
            else:
                self.broken.pop((name, "experiment"), None)  # readable again: the alarm is over
            found.append(record if record is not None and record.status == "running" else None)
        return found[0], found[1]  # type: ignore[return-value]

    def reload_if_changed(self) -> bool:
        """Load the champions again if either alias moved; True if something changed. Never
        raises: what went wrong is logged (once per outage or broken version) and the models
        loaded stay."""
        with self._lock:
            try:
                versions = self.champions()
                experiment, price_test = self.experiments()
            except TrackingUnavailableError as error:
                if self.tracking_down_since is None:
                    self.tracking_down_since = now()
                    log.warning("tracking server unreachable (%s); keeping the models loaded", error)
                if self.current is None:
                    self.not_ready = f"the tracking server is unreachable: {error}"
                return False
            if self.tracking_down_since is not None:
                log.info("tracking server reachable again (down since %s)", self.tracking_down_since)
                self.tracking_down_since = None
            switched = self._switch_to(*versions)
            return self._follow_experiments(experiment, price_test) or switched

    def _follow_experiments(self, experiment: Experiment | None, price_test: PriceTest | None) -> bool:
        """Start or stop answering with a challenger, and apply or drop a price test, as the
        registry says; True if something changed."""
        current = self.current
        if current is None:
            return False
        if experiment is not None and experiment.challenger == current.recommender_version:
            experiment = None  # the challenger became the champion: nothing left to compare
        if (experiment, price_test) == (current.experiment, current.price_test):
            return False
        challenger = current.challenger if current.experiment and experiment else None
        if experiment is not None and (
            current.experiment is None or current.experiment.challenger != experiment.challenger
        ):
            challenger = self._model(RECOMMENDER, experiment.challenger)  # type: ignore[assignment]
            if challenger is None:
                experiment = None  # logged and listed as an alarm; everyone stays on the champion
            else:
                challenger.recommend(None, 1)
        self.current = dataclasses.replace(
            current, experiment=experiment, challenger=challenger, price_test=price_test
        )
        log.info(
            "experiment: %s; price test: %s",
            f"{experiment.id} (challenger v{experiment.challenger} on {experiment.share:.0%})"
            if experiment
            else "none",
            price_test.id if price_test else "none",
        )
        return True

    def _switch_to(self, recommender: str | None, pricing: str | None) -> bool:
        current = self.current
        if recommender is None:
            if current is None:
                self.not_ready = (
                    f"no champion for {RECOMMENDER}: train a model and promote it (storewise promote)"
                )
            return False  # a champion alias removed later keeps the models being served
        if current is not None and pricing is None and current.pricing_version is not None:
            pricing = current.pricing_version  # likewise for the pricing model
        if current is not None and (recommender, pricing) == (
            current.recommender_version,
            current.pricing_version,
        ):
            self.broken.clear()  # a broken champion replaced by the one served: no alarm left
            return False
        fresh = self._load(current, recommender, pricing)
        if fresh is None:
            return False
        self.current = fresh  # one reference swap: requests in flight keep the old snapshot
        self.not_ready = None
        self.broken.clear()
        if current is not None:
            log.info("reloaded: recommender v%s, pricing %s", recommender, pricing or "list prices")
        self._prune_cache()
        return True

    def _load(self, current: Loaded | None, recommender: str, pricing: str | None) -> Loaded | None:
        """A snapshot of these versions, reusing what `current` already holds; None when a
        bundle cannot be read."""
        if current is not None and current.recommender_version == recommender:
            recommendations: Recommendations | None = current.recommendations
        else:
            recommendations = self._model(RECOMMENDER, recommender)  # type: ignore[assignment]
        if current is not None and current.pricing_version == pricing:
            prices: PricingModel | ListPrices | None = current.pricing
        else:
            prices = self._model(PRICING, pricing)  # type: ignore[assignment]
        if recommendations is None or prices is None:
            return None

        # fill the models' caches (decided prices, ranks shared by every customer) now, not
        # in the first requests, and before the heap is frozen
        prices.decided  # noqa: B018
        recommendations.recommend(None, 1)
        if current is not None:  # the experiments carry over; _follow_experiments checks them
            return Loaded(
                recommendations,
                prices,
                recommender,
                pricing,
                now(),
                current.experiment,
                current.challenger,
                current.price_test,
            )
        return Loaded(recommendations, prices, recommender, pricing, now())

    def _model(self, name: str, version: str | None) -> Recommendations | PricingModel | ListPrices | None:
        """The model `name` at `version` (list prices for no pricing version); None when it
        cannot be read, logged once per version."""
        try:
            if version is None:
                return ListPrices(self.shop)
            return load_champion(name, f"models:/{name}/{version}", cache=self.config.model_cache)  # type: ignore[call-overload, no-any-return]
        except Exception as error:  # a missing or broken bundle: keep what is served
            reason = f"{name} v{version}: " + (" ".join(str(error).split())[:300] or type(error).__name__)
            if self.broken.get((name, str(version))) != reason:
                self.broken[(name, str(version))] = reason
                log.error("cannot load %s; keeping the models loaded", reason)
            if self.current is None:
                self.not_ready = f"cannot load {reason}"
            return None

    def _prune_cache(self) -> None:
        """Keep the two newest cached versions of each model (the one served and the one
        before, which another worker may still be loading); older copies are deleted."""
        root = self.config.model_cache
        if not root.is_dir() or self.current is None:
            return
        served = {RECOMMENDER: self.current.recommender_version, PRICING: self.current.pricing_version}
        challenger = self.current.experiment.challenger if self.current.experiment else None
        for model in root.glob("*/*"):
            versions = sorted(
                (path for path in model.iterdir() if path.name.isdigit()), key=lambda path: int(path.name)
            )
            for old in versions[:-2]:
                if old.name not in (
                    served.get(model.name),
                    challenger if model.name == RECOMMENDER else None,
                ):
                    shutil.rmtree(old, ignore_errors=True)

    def start_watching(self, every_seconds: float) -> None:
        def watch() -> None:
            while True:
                time.sleep(every_seconds)
                try:
                    self.reload_if_changed()
                except Exception:  # the watcher must outlive anything
                    log.exception("checking for a new champion failed; keeping the current models")

        threading.Thread(target=watch, name="champion-watcher", daemon=True).start()


def tracking_timeouts(settings: ServiceSettings) -> None:
    """A reload check must not hang on a tracking server that is down: MLflow's HTTP client
    retries 7 times with back-off by default (minutes); here one retry and a short timeout."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(settings.tracking_timeout)))
