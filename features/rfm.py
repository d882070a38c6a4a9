"""RFM: recency, frequency and monetary value per customer, scored and named.

- recency: days from the customer's last purchase to the reference day (the day after
  the last order in the data), so 0 means "bought on the last day";
- frequency: number of distinct orders;
- monetary: what they spent, net of returns.

Scores are quintiles 1-5 of the percentile rank, ties sharing a score (so the many
customers with exactly one order get the same F score rather than arbitrary ones);
recency is scored so that recent is 5. Segments come from the R score and FM, the mean of
the F and M scores rounded half up, by the grid below; a customer whose only order is
recent (R >= 4, one order) is "new" whatever the grid says.

    R \\ FM  1                2                    3               4                5
    5       promising        potential loyalists  loyal           champions        champions
    4       promising        potential loyalists  loyal           champions        champions
    3       need attention   need attention       loyal           loyal            loyal
    2       hibernating      hibernating          at risk         at risk          can't lose
    1       lost             lost                 at risk         can't lose       can't lose
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storewise import columns as c

RECENCY_DAYS = "recency_days"
FREQUENCY = "frequency"
MONETARY = "monetary"
R_SCORE, F_SCORE, M_SCORE, FM_SCORE = "r_score", "f_score", "m_score", "fm_score"
SEGMENT = "segment"

SEGMENT_GRID = {
    5: ("promising", "potential loyalists", "loyal", "champions", "champions"),
    4: ("promising", "potential loyalists", "loyal", "champions", "champions"),
    3: ("need attention", "need attention", "loyal", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at risk", "at risk", "can't lose"),
    1: ("lost", "lost", "at risk", "can't lose", "can't lose"),
}
NEW = "new"
SEGMENTS = (
    "champions",
    "loyal",
    "potential loyalists",
    "new",
    "promising",
    "need attention",
    "at risk",
    "can't lose",
    "hibernating",
    "lost",
)


def quintile_score(values: pd.Series, quantiles: int = 5) -> pd.Series:
    """1..quantiles from the percentile rank; equal values get equal scores."""
    percentile = values.rank(method="average", pct=True)
    return np.ceil(percentile * quantiles).clip(1, quantiles).astype("int8")


def rfm_table(
    orders: pd.DataFrame, reference_day: pd.Timestamp | None = None, quantiles: int = 5
) -> pd.DataFrame:
    """One row per customer with at least one purchase; guests have no row."""
    known = orders[orders[c.CUSTOMER_ID].notna()]
    value = known[c.QUANTITY] * known[c.UNIT_PRICE]
    signed = value.where(~known[c.RETURNED], -value)
    sales = known[~known[c.RETURNED]]
    if sales.empty:
        return pd.DataFrame(
            columns=[
                c.CUSTOMER_ID,
                RECENCY_DAYS,
                FREQUENCY,
                MONETARY,
                R_SCORE,
                F_SCORE,
                M_SCORE,
                FM_SCORE,
                SEGMENT,
            ]
        )
    tz = orders[c.ORDERED_AT].dt.tz
    if reference_day is None:
        reference_day = orders[c.ORDERED_AT].max().tz_convert(tz).normalize() + pd.Timedelta(days=1)
    last_day = sales.groupby(c.CUSTOMER_ID)[c.ORDERED_AT].max().dt.tz_convert(tz).dt.normalize()
    table = pd.DataFrame(
        {
            RECENCY_DAYS: (reference_day - last_day).dt.days - 1,
            FREQUENCY: sales.groupby(c.CUSTOMER_ID)[c.ORDER_ID].nunique(),
            MONETARY: signed.groupby(known[c.CUSTOMER_ID]).sum().reindex(last_day.index).round(2),
        }
    )
    table[R_SCORE] = quintile_score(-table[RECENCY_DAYS], quantiles)
    table[F_SCORE] = quintile_score(table[FREQUENCY], quantiles)
    table[M_SCORE] = quintile_score(table[MONETARY], quantiles)
    table[FM_SCORE] = np.floor((table[F_SCORE] + table[M_SCORE]) / 2 + 0.5).astype("int8")
    table[SEGMENT] = segment_of(table[R_SCORE], table[FM_SCORE], table[FREQUENCY])
    return table.rename_axis(c.CUSTOMER_ID).reset_index()


def segment_of(r_score: pd.Series, fm_score: pd.Series, frequency: pd.Series) -> pd.Series:
    names = [SEGMENT_GRID[int(r)][int(fm) - 1] for r, fm in zip(r_score, fm_score, strict=True)]
    segments = pd.Series(names, index=r_score.index, dtype="str")
    segments[(r_score >= 4) & (frequency == 1)] = NEW
    return segments
