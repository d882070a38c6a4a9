"""Where a shop's files live, and the shop's own settings (currency, time zone).

Every step reads and writes under one shop directory: `raw/` (validated canonical
tables), `features/` (pipeline outputs), `logs/` (price audit, feedback), and
`shop.yaml`, written by `data generate` or `data import`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, field_validator

from storewise.config import StrictModel, load_settings

DEFAULT_SHOP_DIR = Path("data/demo")


class ShopSettings(StrictModel):
    """What a shop is: its name, the currency amounts are in, and its local time zone."""

    name: str = Field(min_length=1)
    currency: str = Field(min_length=1, max_length=8)
    timezone: str
    source: str = Field(description="how the data arrived: 'demo-generator' or an import format")
    # The period the shop's sales are recorded in: a weekly sales export knows weeks, not
    # days, and its demand signals are per week.
    period: Literal["day", "week"] = "day"
    # How price_history reads: "changes" = a row when a price changes (it holds until the
    # item's next row); "periods" = a row for every period the export recorded, so a period
    # without a row was not recorded (its sales are unknown, not zero).
    price_log: Literal["changes", "periods"] = "changes"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ShopPaths:
    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def ground_truth(self) -> Path:
        """The generator's true demand parameters; read by the simulator and by quality
        reports, never by training."""
        return self.root / "ground_truth"

    @property
    def settings_file(self) -> Path:
        return self.root / "shop.yaml"

    @property
    def import_report(self) -> Path:
        return self.root / "import_report.csv"

    @property
    def import_summary(self) -> Path:
        return self.root / "import_summary.json"

    def table(self, name: str) -> Path:
        return self.raw / f"{name}.parquet"

    def settings(self) -> ShopSettings:
        return load_settings(ShopSettings, self.settings_file)


def write_shop_settings(directory: Path, settings: ShopSettings) -> Path:
    path = directory / "shop.yaml"
    path.write_text(yaml.safe_dump(settings.model_dump(), sort_keys=False), encoding="utf-8")
    return path
