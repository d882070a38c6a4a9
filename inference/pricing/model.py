"""The fitted pricing model: per item, what the policy needs to price it now.

Elasticity with its interval and evidence, the expected units per period (a day, or a
week for weekly data) at the reference price (the fitted base rate times the item's
recent exposure), the price in force at the end of the data, current stock, cost, list
price and the week-on-month demand change; where the model estimated cross-price effects,
each item's shelf and its demand's elasticity to the other shelf items' prices.
`train pricing` builds it (`training/pricing/build.py`), logs and registers it; the service
loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from inference.pricing.policy import DELIVERY_COLUMN, decide_arrays
from storewise import columns as c
from storewise.columns import (
    CROSS_ELASTICITY,
    CROSS_HIGH,
    CROSS_LOW,
    CURVATURE,
    DELIVERY_PERIODS,
    DEMAND_SHAPE,
    ELASTICITY,
    EVIDENCE,
    HIGH,
    LOW,
    OBSERVED_HIGH,
    OBSERVED_LOW,
    REFERENCE_PRICE,
    SEMI_LOG,
    SHELF,
)
from storewise.settings import PricingSettings


def price_effect(relative: np.ndarray, elasticity: np.ndarray, semi_log: np.ndarray | bool) -> np.ndarray:
    """Demand at `relative` x the reference price over demand at the reference price, with
    the elasticity at the reference price: r ** e, or exp(e (r - 1)) for semi-log demand."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(semi_log, np.exp(elasticity * (relative - 1)), relative**elasticity)


@dataclass
class PricingModel:
    items: pd.DataFrame
    settings: PricingSettings
    currency: str
    exposure: str
    info: dict[str, object] = field(default_factory=dict)
    period: str = "day"

    def __post_init__(self) -> None:
        self.items = self.items.reset_index(drop=True)
        # a dict: pricing a request's few items is a hot path, and pandas .loc costs more than the pricing
        self.position = {item: index for index, item in enumerate(self.items[c.ITEM_ID].astype(str))}
        self.arrays = {
            "item_id": self.items[c.ITEM_ID].astype(str).to_numpy(),
            "current_price": self.items["current_price"].to_numpy(float),
            "list_price": self.items[c.LIST_PRICE].to_numpy(float),
            "unit_cost": self.items[c.UNIT_COST].to_numpy(float),
            "stock": self.items[c.STOCK].to_numpy(float),
            "elasticity": self.items[ELASTICITY].to_numpy(float),
            "low_90": self.items[LOW].to_numpy(float),
            "high_90": self.items[HIGH].to_numpy(float),
            "item_evidence": (self.items[EVIDENCE] == "item").to_numpy(),
            "reference_price": self.items[REFERENCE_PRICE].to_numpy(float),
            "daily_units_at_reference": self.items["daily_units_at_reference"].to_numpy(float),
            "demand_change": self.items["demand_change"].to_numpy(float),
        }
        if OBSERVED_LOW in self.items and OBSERVED_HIGH in self.items:
            self.arrays["observed_low"] = self.items[OBSERVED_LOW].to_numpy(float)
            self.arrays["observed_high"] = self.items[OBSERVED_HIGH].to_numpy(float)
        if DELIVERY_PERIODS in self.items:
            self.arrays[DELIVERY_COLUMN] = self.items[DELIVERY_PERIODS].to_numpy(float)
        if CURVATURE in self.items:
            self.arrays["curvature"] = self.items[CURVATURE].fillna(0).to_numpy(float)
        if DEMAND_SHAPE in self.items:
            self.arrays["semi_log"] = (self.items[DEMAND_SHAPE] == SEMI_LOG).to_numpy()
        if SHELF in self.items and CROSS_ELASTICITY in self.items:
            self.arrays["shelf"] = pd.factorize(self.items[SHELF])[0].astype(np.int64)
            self.arrays["cross_elasticity"] = self.items[CROSS_ELASTICITY].fillna(0).to_numpy(float)
            if CROSS_LOW in self.items and CROSS_HIGH in self.items:
                self.arrays["cross_low"] = self.items[CROSS_LOW].fillna(0).to_numpy(float)
                self.arrays["cross_high"] = self.items[CROSS_HIGH].fillna(0).to_numpy(float)

    def knows(self, item_id: str) -> bool:
        return item_id in self.position

    def states(self, positions: np.ndarray, **overrides: np.ndarray) -> dict[str, np.ndarray]:
        a = self.arrays
        state = {
            name: a[name][positions]
            for name in (
                "item_id",
                "current_price",
                "list_price",
                "unit_cost",
                "stock",
                "elasticity",
                "low_90",
                "high_90",
                "item_evidence",
                "demand_change",
            )
        }
        for name in (
            "shelf",
            "cross_elasticity",
            "cross_low",
            "cross_high",
            "observed_low",
            "observed_high",
            "curvature",
            DELIVERY_COLUMN,
        ):
            if name in a:
                state[name] = a[name][positions]
        if "curvature" in a or "semi_log" in a:
            state["reference_price"] = a["reference_price"][positions]
        if "semi_log" in a:
            state["semi_log"] = a["semi_log"][positions]
        state.update(overrides)
        if "daily_units" not in overrides:
            state["daily_units"] = a["daily_units_at_reference"][positions] * self.price_factor(
                positions, state["current_price"]
            )
        return state

    def price_factor(self, positions: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """Demand at `prices` relative to demand at the reference prices."""
        relative = prices / self.arrays["reference_price"][positions]
        semi_log = self.arrays["semi_log"][positions] if "semi_log" in self.arrays else False
        effect = price_effect(relative, self.arrays["elasticity"][positions], semi_log)
        if "curvature" not in self.arrays:
            return effect
        return effect * np.exp(self.arrays["curvature"][positions] * np.log(relative) ** 2)

    @cached_property
    def decided(self) -> dict[str, np.ndarray]:
        """Every item's base price now, with its reason. The policy's inputs are fixed for a
        model, so it decides once; the service prices every recommended item of every request."""
        return decide_arrays(
            self.states(np.arange(len(self.items), dtype=np.int64)), self.settings, self.currency, self.period
        )

    def price(self, item_ids: list[str]) -> dict[str, np.ndarray]:
        """Base prices now for these items (the same whoever asks)."""
        positions = np.array([self.position[item] for item in item_ids], dtype=np.int64)
        return {name: values[positions] for name, values in self.decided.items()}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.items.to_parquet(directory / "items.parquet", index=False)
        meta = {
            "settings": self.settings.model_dump(mode="json"),
            "currency": self.currency,
            "exposure": self.exposure,
            "info": self.info,
            "period": self.period,
        }
        (directory / "pricing.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> PricingModel:
        meta = json.loads((directory / "pricing.json").read_text(encoding="utf-8"))
        return cls(
            pd.read_parquet(directory / "items.parquet"),
            PricingSettings.model_validate(meta["settings"]),
            meta["currency"],
            meta["exposure"],
            meta["info"],
            meta.get("period", "day"),
        )
