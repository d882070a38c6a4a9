"""The recommender's bundle: what training writes into the registry and the service loads.

A directory with the hybrid model's arrays (`hybrid/`), the catalogue, the personalizable
customers (pseudonymous ids, region, segment, consent; nothing else), popularity by group
and the business rules in force at training. No pickles: arrays, Parquet and JSON only, so
a bundle is read by the code that loads it, not by the code that wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from inference.recommender.answers import Recommendations
from inference.recommender.scoring import HybridModel
from storewise.settings import BusinessRules


def write_bundle(
    directory: Path,
    model: HybridModel,
    catalog: pd.DataFrame,
    customers: pd.DataFrame,
    groups: pd.DataFrame,
    rules: BusinessRules,
) -> Path:
    """Everything `load_bundle` needs, in one directory."""
    model.save(directory / "hybrid")
    catalog.to_parquet(directory / "catalog.parquet", index=False)
    customers.to_parquet(directory / "customers.parquet", index=False)
    groups.to_parquet(directory / "group_popularity.parquet", index=False)
    (directory / "business_rules.json").write_text(rules.model_dump_json(indent=2), encoding="utf-8")
    return directory


def load_bundle(directory: Path) -> Recommendations:
    rules = BusinessRules.model_validate(
        json.loads((directory / "business_rules.json").read_text(encoding="utf-8"))
    )
    return Recommendations(
        HybridModel.load(directory / "hybrid"),
        pd.read_parquet(directory / "catalog.parquet"),
        pd.read_parquet(directory / "customers.parquet"),
        pd.read_parquet(directory / "group_popularity.parquet"),
        rules,
    )
