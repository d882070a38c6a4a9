"""Typed settings for every component, each loaded from one YAML file in `config/`.

Unknown keys are errors (a typo fails at load with the key's name), values are range
checked, and `storewise.config.flatten` turns any of them into MLflow params.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from storewise.config import CONFIG_DIR, StrictModel, load_settings


class RfmSettings(StrictModel):
    quantiles: Literal[5] = 5


class JourneySettings(StrictModel):
    period: Literal["M", "W"] = "M"
    max_hours_between_stages: float = Field(72, gt=0)


class ClusterSettings(StrictModel):
    min_clusters: int = Field(3, ge=2)
    max_clusters: int = Field(8, ge=2, le=20)
    silhouette_sample: int = Field(4000, ge=100)
    seed: int = 7
    top_categories: int = Field(8, ge=1, le=30)

    @model_validator(mode="after")
    def _ordered(self) -> ClusterSettings:
        if self.max_clusters < self.min_clusters:
            raise ValueError("max_clusters must be at least min_clusters")
        return self


class DemandSettings(StrictModel):
    velocity_windows: tuple[int, ...] = Field((7, 28), min_length=1)


class FeatureSettings(StrictModel):
    rfm: RfmSettings = RfmSettings()
    journey: JourneySettings = JourneySettings()
    clusters: ClusterSettings = ClusterSettings()
    demand: DemandSettings = DemandSettings()


class InteractionWeights(StrictModel):
    """How events and orders add up to one weight per (customer, item)."""

    view: float = Field(1.0, ge=0)
    add_to_cart: float = Field(3.0, ge=0)
    purchase: float = Field(8.0, gt=0)
    return_: float = Field(-6.0, le=0, alias="return")
    half_life_days: float = Field(180, gt=0)


class RecommenderSettings(StrictModel):
    interactions: InteractionWeights = InteractionWeights()


def load_feature_settings(config_dir: Path = CONFIG_DIR) -> FeatureSettings:
    return load_settings(FeatureSettings, config_dir / "features.yaml")


def load_recommender_settings(config_dir: Path = CONFIG_DIR) -> RecommenderSettings:
    return load_settings(RecommenderSettings, config_dir / "recommender.yaml")
