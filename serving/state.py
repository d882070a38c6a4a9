"""What a worker serves: the champion models, the shop's settings and rules, and reloading.

A `Loaded` snapshot is immutable; a request takes the current snapshot once and uses it to
the end. A reload builds a new snapshot beside the old one and swaps the reference, so
requests in flight finish on the models they started with and none fails.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from inference.pricing.model import PricingModel
from inference.recommender.answers import Recommendations
from inference.registry import PRICING, RECOMMENDER, champion_version, configure, load_champion
from storewise.config import CONFIG_DIR
from storewise.erasures import ERASURES, erased_hashes, hashed, salt_of
from storewise.settings import LoyaltySettings, load_loyalty_settings
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths, ShopSettings

log = logging.getLogger("storewise.serving")


class NotReadyError(RuntimeError):
    pass


@dataclass(frozen=True)
class Loaded:
    recommendations: Recommendations
    pricing: PricingModel
    recommender_version: str
    pricing_version: str
    loaded_at: str


def champion_of(name: str) -> str:
    version = champion_version(configure(), name)
    if version is None:
        raise NotReadyError(f"no champion for {name}: train a model and promote it (storewise promote)")
    return version


def load_snapshot() -> Loaded:
    recommender_version, pricing_version = champion_of(RECOMMENDER), champion_of(PRICING)
    # by version, not by alias: the snapshot holds exactly the versions it names
    recommendations = load_champion(RECOMMENDER, f"models:/{RECOMMENDER}/{recommender_version}")
    pricing = load_champion(PRICING, f"models:/{PRICING}/{pricing_version}")
    # fill the models' caches (decided prices, ranks shared by every customer) now, not in
    # the first requests, and before the heap is frozen
    pricing.decided  # noqa: B018
    recommendations.recommend(None, 1)
    return Loaded(
        recommendations, pricing, recommender_version, pricing_version, time.strftime("%Y-%m-%dT%H:%M:%S%z")
    )


class ServingState:
    def __init__(self) -> None:
        self.shop = ShopPaths(Path(os.environ.get("STOREWISE_SHOP_DIR", str(DEFAULT_SHOP_DIR))))
        self.settings: ShopSettings = self.shop.settings()
        self.loyalty: LoyaltySettings = load_loyalty_settings(CONFIG_DIR)
        self.current = load_snapshot()
        self._lock = threading.Lock()
        self._erased: set[str] = set()
        self._erased_stamp: float | None = None
        log.info(
            "serving recommender v%s and pricing v%s for %s",
            self.current.recommender_version,
            self.current.pricing_version,
            self.settings.name,
        )

    def is_erased(self, customer_id: str) -> bool:
        """Whether the customer asked to be erased (`storewise erase`); the list is re-read
        as soon as the file changes, so personalization stops at once."""
        path = self.shop.root / ERASURES
        stamp = path.stat().st_mtime if path.exists() else None
        if stamp != self._erased_stamp:
            self._erased = erased_hashes(self.shop.root)
            self._erased_stamp = stamp
        if not self._erased:
            return False
        return hashed(customer_id, salt_of(self.shop)) in self._erased

    def reload_if_changed(self) -> bool:
        """Load the champions again if either alias moved; True if something changed."""
        with self._lock:
            client = configure()
            versions = (champion_version(client, RECOMMENDER), champion_version(client, PRICING))
            if versions == (self.current.recommender_version, self.current.pricing_version):
                return False
            fresh = load_snapshot()
            self.current = fresh  # one reference swap: requests in flight keep the old snapshot
            log.info(
                "reloaded: recommender v%s, pricing v%s", fresh.recommender_version, fresh.pricing_version
            )
            return True

    def start_watching(self, every_seconds: float) -> None:
        def watch() -> None:
            while True:
                time.sleep(every_seconds)
                try:
                    self.reload_if_changed()
                except Exception:  # a registry hiccup must not kill the watcher
                    log.exception("checking for a new champion failed; keeping the current models")

        threading.Thread(target=watch, name="champion-watcher", daemon=True).start()
