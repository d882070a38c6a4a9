"""Typed settings for every component, each loaded from one YAML file in `config/`.

Unknown keys are errors (a typo fails at load with the key's name), values are range
checked, and `storewise.config.flatten` turns any of them into MLflow params.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

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
    # "not interested" (the service's `dismiss` feedback): against the item, like a return
    dismiss: float = Field(-4.0, le=0)
    half_life_days: float = Field(180, gt=0)


class EvaluationSettings(StrictModel):
    test_days: int = Field(28, ge=1)
    # each validation fold is this long (like the test weeks); the folds lie back to back
    # before the test weeks, the latest first; a fold with too little history before it is skipped
    validation_days: int = Field(28, ge=1)
    validation_folds: int = Field(4, ge=1, le=8)
    trending_days: int = Field(14, ge=1)
    primary_protocol: Literal["discovery", "all_purchases", "business_rules"] = "business_rules"
    # paired bootstrap over customers: every comparison's interval, the blend's choices, the gate
    confidence: float = Field(0.9, gt=0.5, lt=1)
    bootstrap_samples: int = Field(1000, ge=100, le=100_000)
    bootstrap_seed: int = 11


class LightFmSettings(StrictModel):
    loss: Literal["warp", "bpr", "logistic", "warp-kos"] = "warp"
    components: int = Field(48, ge=2, le=512)
    learning_rate: float = Field(0.05, gt=0, le=1)
    item_alpha: float = Field(1e-6, ge=0)
    user_alpha: float = Field(1e-6, ge=0)
    max_sampled: int = Field(30, ge=1)
    max_epochs: int = Field(20, ge=1, le=500)
    patience: int = Field(3, ge=1)
    # each later model of a run (the next validation fold, the test weeks, the final fit)
    # continues the one before it for this many epochs on its own, longer history instead
    # of training from scratch; 0: every model trains from scratch for the chosen epochs
    warm_start_epochs: int = Field(0, ge=0, le=500)
    use_features: bool = True
    # the weight of the feature columns beside each identity column in LightFM's matrices
    feature_weight: float = Field(1.0, gt=0)
    # 1 is deterministic; 2 threads (LightFM's parallel SGD) are not reproducible, and measured
    # no faster on the online-retail sample (benchmarks/README.md)
    threads: int = Field(1, ge=1, le=64)
    # a run's later from-scratch LightFM fits in a second process while the other models
    # are built (training/recommender/background.py)
    background: bool = True
    # a run from scratch fits LightFM on its other folds only if it clearly pays its way in
    # the blends on the latest fold, then on the latest two (training/recommender/validation.py);
    # false: on every fold, and the tuning on all of them decides (a what-if, and a run's time
    # where LightFM stays)
    screen: bool = True
    seed: int = 7


class ComponentSettings(StrictModel):
    ease_regularization: float = Field(500, gt=0)
    bm25_neighbours: int = Field(100, ge=1)
    item_neighbours: int = Field(200, ge=1)
    recent_half_life_days: float = Field(60, gt=0)
    repeat_half_life_days: float = Field(90, gt=0)
    trending_half_life_days: float = Field(7, gt=0)
    latest_baskets: int = Field(2, ge=1)  # the "next" component reads the last this many baskets
    # EASE inverts a dense items x items matrix: 8,000 items is about 0.5 GB and seconds.
    # Above this, EASE is left out of the hybrid and the peers, and training says so.
    max_ease_items: int = Field(8000, ge=1, le=50_000)
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    threads: int = Field(2, ge=1, le=64)  # implicit's BM25 and ALS


class TifuSettings(StrictModel):
    """TIFU-KNN (training/recommender/tifu.py): the paper's and reference code's defaults."""

    neighbours: int = Field(300, ge=1)
    within_decay: float = Field(0.9, gt=0, le=1)
    group_decay: float = Field(0.7, gt=0, le=1)
    groups: int = Field(7, ge=1, le=100)
    alpha: float = Field(0.7, ge=0, le=1)
    # neighbours are drawn from at most this many customers (those who bought the most)
    neighbour_pool: int = Field(20_000, ge=1)


class RepurchaseSettings(StrictModel):
    """Repurchase timing (training/recommender/repurchase.py): gradient-boosted trees that
    learn from the shop's own history when a customer buys an item again."""

    max_pairs: int = Field(100_000, ge=1_000)  # (customer, item) pairs the model learns from
    iterations: int = Field(40, ge=1, le=1000)
    leaves: int = Field(15, ge=2, le=255)
    learning_rate: float = Field(0.15, gt=0, le=1)
    seed: int = 7


class AlsSettings(StrictModel):
    factors: int = Field(64, ge=1, le=1024)
    regularization: float = Field(0.05, ge=0)
    alpha: float = Field(10.0, gt=0)
    iterations: int = Field(15, ge=1, le=500)
    seed: int = 7


class PeerSettings(StrictModel):
    """The peers and baselines the hybrid is compared with (never served)."""

    cooccurrence_neighbours: int = Field(100, ge=1)
    als: AlsSettings = AlsSettings()


BlendComponent = Literal[
    "lightfm",
    "ease",
    "ease_recent",
    "ease_weights",
    "bm25",
    "bm25_recent",
    "names",
    "season",
    "next",
    "buy_again",
    "due",
    "tifu",
    "tifu_explore",
    "trending",
    "recent_buyers",
    "popularity",
]


class BlendSettings(StrictModel):
    # the components the blend may use (inference/recommender/scoring.py says what each is)
    components: tuple[BlendComponent, ...] = Field(
        (
            "lightfm",
            "ease",
            "ease_recent",
            "bm25",
            "names",
            "season",
            "next",
            "buy_again",
            "due",
            "tifu",
            "tifu_explore",
            "trending",
            "popularity",
        ),
        min_length=1,
    )
    grid: tuple[float, ...] = Field((0, 0.25, 0.5, 1.0, 2.0), min_length=2)
    passes: int = Field(2, ge=1)
    # the tuned weights are shrunk toward the best single component: w = (1 - s) * best + s * tuned
    # for s in these steps, keeping the s with the best lower confidence bound on validation
    shrinkage: tuple[float, ...] = Field((0.0, 0.25, 0.5, 0.75, 1.0), min_length=1)
    candidates: int = Field(200, ge=10)
    rank_offset: float = Field(20, gt=0)


ProtocolName = Literal["discovery", "all_purchases", "business_rules"]


class RerankSettings(StrictModel):
    # the learned reranker (training/recommender/rerank.py): gradient-boosted trees over the
    # blend's candidates, adopted per protocol from its gain over the blend on validation
    # folds it was not fitted on (`adoption_rule`)
    enabled: bool = True
    # false: the reranker answers every protocol unjudged (no held-out groups fitted)
    gate: bool = True
    # protocols whose trees replace the blend unjudged (no held-out groups fitted: the
    # decision would not read them); why discovery, training/recommender/rerank.py
    adopt_always: tuple[ProtocolName, ...] = ("discovery",)
    # protocols whose trees replace the blend unless clearly worse on held-out folds; the
    # others (in neither list): only if clearly better
    adopt_unless_clearly_worse: tuple[ProtocolName, ...] = ()
    iterations: int = Field(100, ge=1, le=1000)
    learning_rate: float = Field(0.08, gt=0, le=1)
    leaves: int = Field(15, ge=2, le=255)
    max_depth: int = Field(6, ge=1, le=20)
    min_leaf: int = Field(200, ge=1)
    l2: float = Field(1.0, ge=0)
    bins: int = Field(255, ge=2, le=255)  # each feature's histogram bins
    # candidates (rows) a fit learns from at most: every bought one, a random share of the rest
    max_rows: int = Field(150_000, ge=1_000)
    # the trees score the candidates some component ranks in its top this many
    top_per_component: int = Field(50, ge=1)
    # the folds are dealt into this many groups; each group in turn is held out
    held_out_groups: int = Field(2, ge=2, le=12)
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _older_files_keep_their_rule(cls, data: Any) -> Any:
        """A settings file from before `adopt_always` (its default, discovery, was then under
        `adopt_unless_clearly_worse`) keeps the rule it names."""
        if isinstance(data, dict) and "adopt_always" not in data and data.get("adopt_unless_clearly_worse"):
            named = set(data["adopt_unless_clearly_worse"])
            default = cls.model_fields["adopt_always"].default
            data = {**data, "adopt_always": tuple(p for p in default if p not in named)}
        return data

    @model_validator(mode="after")
    def _one_rule_per_protocol(self) -> RerankSettings:
        both = sorted(set(self.adopt_always) & set(self.adopt_unless_clearly_worse))
        if both:
            raise ValueError(
                f"adopt_always and adopt_unless_clearly_worse both name {', '.join(both)}: one rule per protocol"
            )
        return self


class SearchSettings(StrictModel):
    components: tuple[int, ...] = (32, 64)
    learning_rate: tuple[float, ...] = (0.01, 0.03)


class RecommenderSettings(StrictModel):
    interactions: InteractionWeights = InteractionWeights()
    evaluation: EvaluationSettings = EvaluationSettings()
    lightfm: LightFmSettings = LightFmSettings()
    components: ComponentSettings = ComponentSettings()
    tifu: TifuSettings = TifuSettings()
    repurchase: RepurchaseSettings = RepurchaseSettings()
    blend: BlendSettings = BlendSettings()
    rerank: RerankSettings = RerankSettings()
    peers: PeerSettings = PeerSettings()
    search: SearchSettings = SearchSettings()


def load_feature_settings(config_dir: Path = CONFIG_DIR) -> FeatureSettings:
    return load_settings(FeatureSettings, config_dir / "features.yaml")


def load_recommender_settings(config_dir: Path = CONFIG_DIR) -> RecommenderSettings:
    return load_settings(RecommenderSettings, config_dir / "recommender.yaml")


class BusinessRules(StrictModel):
    one_time_categories: tuple[str, ...] = ()
    in_stock_only: bool = True
    pinned_items: tuple[str, ...] = ()
    boosted_items: dict[str, float] = Field(default_factory=dict)
    # current promotional prices by item (the better of these and the member price applies)
    promotions: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _positive_boosts(self) -> BusinessRules:
        for item, factor in self.boosted_items.items():
            if factor <= 0:
                raise ValueError(f"boosted_items.{item}: factor must be positive, got {factor}")
        return self


def load_business_rules(config_dir: Path = CONFIG_DIR) -> BusinessRules:
    return load_settings(BusinessRules, config_dir / "business_rules.yaml")


class Guardrails(StrictModel):
    min_margin: float = Field(0.15, ge=0, le=5)
    ceiling_multiple: float = Field(1.5, ge=1)
    max_daily_change: float = Field(0.10, gt=0, le=1)
    ending: float = Field(0.90, ge=0, lt=1)
    default_cost_share: float = Field(0.55, gt=0, lt=1)


class UncertaintySettings(StrictModel):
    full_move_width: float = Field(1.2, gt=0)
    category_evidence_move: float = Field(0.5, ge=0, le=1)
    # the profit target stays within this share beyond the prices the item sold at: an
    # elasticity measured between them says little about prices far outside
    max_beyond_observed: float = Field(0.10, ge=0)
    # a move is priced at the elasticity interval's least favourable end for it (a cut at
    # the least elastic end, a rise at the most elastic): the best price in the worst case
    # the data allows, the list price while the data cannot tell a move pays
    cautious_target: bool = True


class InventorySettings(StrictModel):
    low_cover_days: float = Field(10, gt=0)
    high_cover_days: float = Field(120, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> InventorySettings:
        if self.high_cover_days <= self.low_cover_days:
            raise ValueError("high_cover_days must be above low_cover_days")
        return self


class PanelSettings(StrictModel):
    """The pooled model for shops whose products are sold in several stores (a weekly
    sales export): one Poisson regression over every store x product series."""

    season_harmonics: int = Field(2, ge=0, le=6)  # week-of-year Fourier terms (needs a year of data)
    lags: bool = True  # last period's deal and feature (the dip after a promotion)
    slope_sd_start: float = Field(0.5, gt=0)  # store slopes' spread before it is estimated
    min_slope_sd: float = Field(0.02, gt=0)
    slope_iterations: int = Field(8, ge=1, le=50)  # empirical-Bayes rounds for the spread
    max_products: int = Field(200, ge=1)  # per-product terms are dense: beyond this, per-item fits


class ElasticityConfig(StrictModel):
    min_units: int = Field(20, ge=1)
    min_log_price_sd: float = Field(0.02, ge=0)
    min_prior_sd: float = Field(0.15, gt=0)
    # the spread of elasticities between items of a category: "shop" is one spread for the
    # whole shop, from every category's items around their category's mean (a category of
    # three items cannot estimate its own); "category" estimates each category's own; a
    # number is the spread itself (the simulator's weekly refits keep the one the run found)
    prior_spread: Literal["shop", "category"] | Annotated[float, Field(gt=0, allow_inf_nan=False)] = "shop"
    exposure: Literal["auto", "views", "index"] = "auto"
    ridge: float = Field(1e-6, ge=0)  # the GLM's L2 penalty: just enough to keep a fit finite
    # "auto": the pooled panel model when products name the product they are in several
    # stores (weekly sales imports), else one fit per item pooled by category
    model: Literal["auto", "item", "panel"] = "auto"
    panel: PanelSettings = PanelSettings()
    # cross-price effects (a cut on one item takes sales from the others of its shelf, a
    # store's category): "auto" keeps them when a Wald test says the data supports them
    # (at cross_test_level), "on" always, "off" never
    cross_effects: Literal["auto", "on", "off"] = "auto"
    cross_test_level: float = Field(0.05, gt=0, lt=1)
    # per-item model: a curvature of log demand in log price (demand that falls faster the
    # higher the price, as near a choke price), tested and kept like the cross effects.
    # Off by default: on the online-retail sample, whose prices move with quantity tiers,
    # the test keeps it and the refitted elasticities run wild (30-day WAPE 24.6 vs 1.25)
    curvature: Literal["auto", "on", "off"] = "off"
    # per-item model: demand's shape away from the reference price, for the whole shop:
    # "auto" uses semi-log demand (log demand linear in the price) when a Vuong-type test
    # (items as units) over up to shape_test_items items prefers it at shape_test_level,
    # else constant elasticity
    shape: Literal["auto", "constant", "semi-log"] = "auto"
    shape_test_level: float = Field(0.05, gt=0, lt=1)
    shape_test_items: int = Field(300, ge=2)


class SimulationSettings(StrictModel):
    days: int = Field(60, ge=1, le=730)
    seeds: tuple[int, ...] = Field((1, 2, 3), min_length=1)
    min_share_of_oracle: float = Field(0.9, gt=0, le=1)
    holding_cost_per_year: float = Field(0.25, ge=0)  # share of the unit cost a unit in stock costs a year
    refit_every_days: int = Field(7, ge=0)  # the optimizer refitted on what it sold (0: never)


class PricingEvaluation(StrictModel):
    enough_units: int = Field(100, ge=1)
    enough_log_price_sd: float = Field(0.05, ge=0)
    forecast_days: int = Field(30, ge=7)
    baseline_periods: int = Field(8, ge=1)  # the "mean of the last N periods" baseline
    bootstrap_samples: int = Field(1000, ge=50)  # resamples of series for forecast intervals
    bootstrap_seed: int = 0


class PricingSettings(StrictModel):
    guardrails: Guardrails = Guardrails()
    uncertainty: UncertaintySettings = UncertaintySettings()
    inventory: InventorySettings = InventorySettings()
    elasticity: ElasticityConfig = ElasticityConfig()
    simulation: SimulationSettings = SimulationSettings()
    evaluation: PricingEvaluation = PricingEvaluation()


def load_pricing_settings(config_dir: Path = CONFIG_DIR) -> PricingSettings:
    return load_settings(PricingSettings, config_dir / "pricing.yaml")


class MembershipRules(StrictModel):
    fee: float = Field(10.0, ge=0)
    free_above: float = Field(150.0, ge=0)


class LoyaltySettings(StrictModel):
    membership: MembershipRules = MembershipRules()
    member_discount: float = Field(0.10, ge=0, lt=1)
    free_gift_above: float = Field(50.0, ge=0)
    free_gift: str = "a free gift"
    free_shipping_from: float = Field(50.0, ge=0)
    shipping_fee: float = Field(8.0, ge=0)


def load_loyalty_settings(config_dir: Path = CONFIG_DIR) -> LoyaltySettings:
    return load_settings(LoyaltySettings, config_dir / "loyalty.yaml")


class ExperimentSettings(StrictModel):
    """How an online experiment is judged (`storewise report experiment`)."""

    confidence: float = Field(0.90, gt=0.5, lt=1)
    power: float = Field(0.80, gt=0.5, lt=1)
    # the smallest relative change of the primary metric worth detecting (0.05 = 5%)
    minimum_effect: float = Field(0.05, gt=0, le=5)
    primary_metric: Literal["revenue_per_customer", "conversion", "click_through"] = "revenue_per_customer"
    # the price test's default step and length (`storewise experiment start --model pricing`)
    price_step: float = Field(0.045, gt=0, lt=0.5)
    price_days: int = Field(28, ge=2, le=365)


def load_experiment_settings(config_dir: Path = CONFIG_DIR) -> ExperimentSettings:
    path = config_dir / "experiments.yaml"
    return load_settings(ExperimentSettings, path) if path.exists() else ExperimentSettings()
