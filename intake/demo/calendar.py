"""The demo shop's calendar: gift peaks, weekly rhythm, and the promotion windows.

Pure functions of the date, so the generator (history) and the simulator (the future)
see the same seasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Chinese New Year by year (a moving feast that drives gift buying in Malaysia).
CHINESE_NEW_YEAR = {
    2022: "2022-02-01",
    2023: "2023-01-22",
    2024: "2024-02-10",
    2025: "2025-01-29",
    2026: "2026-02-17",
    2027: "2027-02-06",
    2028: "2028-01-26",
    2029: "2029-02-13",
    2030: "2030-02-03",
}

# Monday .. Sunday, mean 1: browsing and buying rise towards the weekend.
WEEKDAY_FACTOR = np.array([0.90, 0.92, 0.95, 0.98, 1.05, 1.13, 1.07])


@dataclass(frozen=True)
class Peak:
    name: str
    center: pd.Timestamp
    height: float
    width_days: float


@dataclass(frozen=True)
class PromoWindow:
    name: str
    start: pd.Timestamp
    end: pd.Timestamp
    share_of_items: float
    max_discount: float


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> pd.Timestamp:
    first = pd.Timestamp(year=year, month=month, day=1)
    offset = (weekday - first.weekday()) % 7
    return first + pd.Timedelta(days=offset + 7 * (n - 1))


def _black_friday(year: int) -> pd.Timestamp:
    return _nth_weekday(year, 11, 3, 4) + pd.Timedelta(days=1)


def peaks(year: int) -> list[Peak]:
    mothers_day = _nth_weekday(year, 5, 6, 2)
    cny = pd.Timestamp(CHINESE_NEW_YEAR.get(year, f"{year}-02-01"))
    return [
        Peak("chinese new year", cny - pd.Timedelta(days=7), 0.35, 5.0),
        Peak("valentine's day", pd.Timestamp(year=year, month=2, day=12), 0.75, 3.5),
        Peak("mother's day", mothers_day - pd.Timedelta(days=3), 0.55, 4.0),
        Peak("11.11", pd.Timestamp(year=year, month=11, day=11), 0.90, 1.2),
        Peak("black friday", _black_friday(year) + pd.Timedelta(days=1), 0.80, 2.0),
        Peak("12.12", pd.Timestamp(year=year, month=12, day=12), 0.50, 1.2),
        Peak("christmas", pd.Timestamp(year=year, month=12, day=19), 1.00, 6.0),
    ]


def season_factor(dates: pd.DatetimeIndex) -> np.ndarray:
    """Multiplier on traffic for each date: 1 on an ordinary day, up to ~2 at the peaks,
    lower in the January lull."""
    days = dates.normalize()
    factor = np.ones(len(days))
    for year in range(days.year.min() - 1, days.year.max() + 2):
        for peak in peaks(year):
            distance = (days - peak.center).days.to_numpy().astype(float)
            factor += peak.height * np.exp(-0.5 * (distance / peak.width_days) ** 2)
    january_lull = (days.month == 1) & (days.day <= 20)
    factor[january_lull] *= 0.8
    return factor


def weekday_factor(dates: pd.DatetimeIndex) -> np.ndarray:
    return WEEKDAY_FACTOR[dates.day_of_week]


def promo_windows(start: pd.Timestamp, end: pd.Timestamp) -> list[PromoWindow]:
    """The shop's campaigns between start and end: each puts part of the catalogue on
    promotion, timed with a gift peak (so promotions and high demand coincide, as they do
    in real shops)."""
    windows = []
    for year in range(start.year, end.year + 1):
        mothers_day = _nth_weekday(year, 5, 6, 2)
        black_friday = _black_friday(year)
        cny = pd.Timestamp(CHINESE_NEW_YEAR.get(year, f"{year}-02-01"))
        candidates = [
            PromoWindow(
                "chinese new year",
                cny - pd.Timedelta(days=12),
                cny - pd.Timedelta(days=3),
                0.35,
                0.20,
            ),
            PromoWindow("valentine's day", pd.Timestamp(year, 2, 6), pd.Timestamp(year, 2, 14), 0.40, 0.25),
            PromoWindow("mother's day", mothers_day - pd.Timedelta(days=8), mothers_day, 0.40, 0.25),
            PromoWindow("mid-year sale", pd.Timestamp(year, 6, 20), pd.Timestamp(year, 7, 5), 0.50, 0.30),
            PromoWindow("11.11", pd.Timestamp(year, 11, 9), pd.Timestamp(year, 11, 11), 0.60, 0.30),
            PromoWindow("black friday", black_friday, black_friday + pd.Timedelta(days=3), 0.55, 0.30),
            PromoWindow("christmas", pd.Timestamp(year, 12, 12), pd.Timestamp(year, 12, 24), 0.45, 0.25),
        ]
        windows += [w for w in candidates if w.end >= start and w.start <= end]
    return windows
