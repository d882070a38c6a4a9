"""The demo generator's settings: what `storewise data generate` takes.

Apart from the generator (intake/demo/generate.py) so that the CLI can build its options'
defaults and `--help` from them without importing numpy and pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

# the true demand's families (intake/demo/dynamics.py implements them)
FAMILIES = ("constant_elasticity", "linear", "reference_price", "substitution")


@dataclass(frozen=True)
class GeneratorSettings:
    customers: int = 60_000
    products: int = 100
    days: int = 365
    seed: int = 42
    end_date: str = "2026-10-31"
    views_per_customer_year: float = 5.0
    anonymous_share: float = 0.2
    promo_view_boost: float = 1.3
    growth_per_year: float = 0.10
    cart_to_purchase: float = 0.4
    late_delivery_probability: float = 0.08
    # the true demand's family (intake/demo/dynamics.py) and the other families' parameters
    demand_family: str = "constant_elasticity"
    reference_memory: float = 0.15  # share of the gap to today's price the usual price closes a day
    reference_effect: float = -1.0  # elasticity to price / usual price
    substitution: float = 1.0  # elasticity to the category's other prices

    def validate(self) -> None:
        for name in ("customers", "products", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1")
        if self.demand_family not in FAMILIES:
            raise ValueError(
                f"--demand-family must be one of {', '.join(FAMILIES)}, got '{self.demand_family}'"
            )
        if self.days < 28:
            raise ValueError("--days must be at least 28 (four weeks make the smallest useful history)")
