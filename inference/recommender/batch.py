"""Batch recommendations: top k for many customers at once (`storewise recommend`, the pyfunc)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from inference.recommender.answers import Answer, Purchased, Recommendations
from storewise import columns as c
from storewise.errors import DataError
from storewise.ids import normalize_customer_id


def read_customer_ids(path: Path) -> list[str]:
    """One id per line as the shop writes them ('17850' or '17850.0'); blank lines and a
    'customer_id' header are skipped; repeated ids are kept once."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read: {error}", path=path) from None
    ids = [line.strip().split(",")[0].strip() for line in lines]
    ids = [
        value for value in ids if value and value.lower() not in ("customer_id", "customerid", "customer id")
    ]
    if not ids:
        raise DataError("no customer ids in the file", path=path)
    return list(dict.fromkeys(normalize_customer_id(value) for value in ids))


def batch_top_k(
    recommendations: Recommendations,
    customer_ids: list[str],
    ks: list[int],
    *,
    purchased: Purchased = "exclude",
) -> pd.DataFrame:
    """Top k per customer (customers sharing a k are scored together in batches)."""
    rows = []
    by_k: dict[int, list[int]] = {}
    for position, k in enumerate(ks):
        by_k.setdefault(int(k), []).append(position)
    answers: dict[int, Answer] = {}
    for k, positions in by_k.items():
        for position, answer in zip(
            positions,
            recommendations.recommend_many([customer_ids[p] for p in positions], k, purchased=purchased),
            strict=True,
        ):
            answers[position] = answer
    for position, customer_id in enumerate(customer_ids):
        answer = answers[position]
        for rank, item in enumerate(answer.items, start=1):
            rows.append(
                (
                    normalize_customer_id(customer_id),
                    item.item_id,
                    rank,
                    item.score,
                    item.reason,
                    answer.source,
                )
            )
    return pd.DataFrame(rows, columns=[c.CUSTOMER_ID, c.ITEM_ID, "rank", "score", "reason", "source"]).astype(
        {"rank": "int64", "score": "float64"}
    )
