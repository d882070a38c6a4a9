"""The reranker's gate: adopted where the trees see what no linear blend can (which
component to trust depends on the customer), with the held-out gain worked out by hand;
left out where what was bought is noise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from inference.recommender.rerank import CONTEXT, Reranker
from storewise.config import CONFIG_DIR
from storewise.settings import BlendSettings, EvaluationSettings, RerankSettings, load_recommender_settings
from training.recommender import rerank as rerank_module
from training.recommender.background import BackgroundJobs
from training.recommender.blend import DISCOUNTS, FoldScores
from training.recommender.rerank import RerankChoice, choose_reranker
from training.recommender.validation import rerank_all

WIDTH = 12
SETTINGS = RerankSettings(
    iterations=30, learning_rate=0.3, leaves=4, max_depth=3, min_leaf=5, max_rows=50_000
)


def fold(seed: int, customers: int, *, noise: bool, flipped: bool = False) -> FoldScores:
    """Component `a` ranks candidate 0 first and 1 second, `b` the other way round. Customers
    with many baskets bought candidate 0, those with one basket candidate 1 (`flipped`: the
    other way round; with `noise`, one random candidate each, whatever their baskets)."""
    rng = np.random.default_rng(seed)
    a = np.zeros((customers, WIDTH), np.float32)
    b = np.zeros((customers, WIDTH), np.float32)
    a[:, 0], a[:, 1], b[:, 1], b[:, 0] = 1 / 20, 1 / 21, 1 / 20, 1 / 21
    heavy = rng.random(customers) < 0.5
    context = np.zeros((customers, WIDTH, len(CONTEXT)), np.float32)
    baskets = np.log1p(np.where(heavy, 40.0, 1.0))  # 40 baskets or one
    context[:, :, CONTEXT.index("customer_baskets")] = baskets.reshape(-1, 1)
    relevant = np.zeros((customers, WIDTH), bool)
    bought = rng.integers(0, WIDTH, customers) if noise else np.where(heavy ^ flipped, 0, 1)
    relevant[np.arange(customers), bought] = True
    return FoldScores(
        candidates=np.tile(np.arange(WIDTH), (customers, 1)),
        values={"a": a, "b": b},
        blocked=np.zeros((customers, WIDTH), bool),
        relevant=relevant,
        ideal=np.full(customers, DISCOUNTS[0]),
        tie_break=np.zeros((customers, WIDTH), np.float32),
        customers=np.array([f"c{seed}-{i}" for i in range(customers)]),
        context=context,
    )


def test_trees_that_see_the_customer_replace_the_blend() -> None:
    folds = [fold(seed, 200, noise=False) for seed in range(4)]
    choice, reranker = choose_reranker(
        folds, ["a", "b"], BlendSettings(), SETTINGS, EvaluationSettings(), "all_purchases"
    )
    assert choice.adopted
    assert reranker is not None
    # a blend puts one component's first item first for everyone: the other half of the
    # customers find theirs second, NDCG 1 / log2(3); the trees put it first for everyone
    second = 1 / np.log2(3)
    for blend, trees in choice.folds:  # each fold's blend is right for one kind of customer only
        assert trees == 1.0
        assert second <= blend < 1.0
        heavy_share = (blend - second) / (1 - second)
        assert 0.35 < heavy_share < 0.65
    assert choice.gain is not None
    assert choice.gain.low > 0.1
    assert reranker.components == ["a", "b"]
    assert reranker.info["bought"] == 800


def test_trees_fitted_on_noise_leave_the_blend_in_place() -> None:
    folds = [fold(seed, 200, noise=True) for seed in range(4)]
    choice, reranker = choose_reranker(
        folds, ["a", "b"], BlendSettings(), SETTINGS, EvaluationSettings(), "all_purchases"
    )
    assert not choice.adopted
    assert reranker is None
    assert choice.gain is not None
    assert not choice.gain.clearly_above_zero
    assert "not clearly better" in choice.reason


# discovery's trees judged: only if not clearly worse (the rule before `adopt_always` took
# discovery), or like every protocol's, only if clearly better
UNLESS_CLEARLY_WORSE = SETTINGS.model_copy(
    update={"adopt_always": (), "adopt_unless_clearly_worse": ("discovery",)}
)
JUDGED = SETTINGS.model_copy(update={"adopt_always": ()})


def opposite_folds() -> list[FoldScores]:
    """Folds 0 and 2 (the first held-out group) follow the opposite rule to folds 1 and 3."""
    return [fold(seed, 200, noise=False, flipped=seed % 2 == 0) for seed in range(4)]


@pytest.mark.parametrize(
    ("protocol", "held_out_folds", "reason"),
    [
        ("all_purchases", 2, "no lead over the blend on the first held-out group"),
        ("discovery", 4, "clearly worse than the blend on held-out folds"),
    ],
    ids=["stops-after-the-first-group", "unless-clearly-worse-every-group"],
)
def test_trees_that_lose_on_held_out_folds_keep_the_blend(
    protocol: str, held_out_folds: int, reason: str
) -> None:
    """Trees fitted on folds 1 and 3 get every customer's item second on 0 and 2 (NDCG
    1 / log2(3)), the blend half of them first. Under all purchases the second group is
    never fitted. Under `adopt_unless_clearly_worse` the first group's loss does not stop
    the decision (a first group behind can pool to noise): the second is fitted too (its
    trees, fitted on the flipped folds 0 and 2, are as wrong on 1 and 3), and the pooled
    gain, clearly below zero, keeps the blend."""
    choice, reranker = choose_reranker(
        opposite_folds(), ["a", "b"], BlendSettings(), UNLESS_CLEARLY_WORSE, EvaluationSettings(), protocol
    )
    assert reranker is None
    assert not choice.adopted
    assert choice.reason.startswith(reason)
    assert ("the other not fitted" in choice.reason) is (held_out_folds == 2)
    assert len(choice.folds) == held_out_folds
    for blend, trees in choice.folds:
        assert trees == round(1 / np.log2(3), 4)
        assert blend > trees
    assert choice.gain is not None
    assert choice.gain.clearly_below_zero


def test_switched_off_or_one_fold_keeps_the_blend() -> None:
    folds = [fold(seed, 50, noise=False) for seed in range(4)]
    off = RerankSettings(enabled=False)
    assert (
        choose_reranker(folds, ["a", "b"], BlendSettings(), off, EvaluationSettings(), "all_purchases")[1]
        is None
    )
    choice, reranker = choose_reranker(
        folds[:1], ["a", "b"], BlendSettings(), SETTINGS, EvaluationSettings(), "all_purchases"
    )
    assert reranker is None
    assert "fewer than two" in choice.reason


def test_too_few_bought_candidates_keep_the_blend() -> None:
    """Five customers a fold, one bought item each: ten to learn from in each group."""
    folds = [fold(seed, 5, noise=False) for seed in range(4)]
    choice, reranker = choose_reranker(
        folds, ["a", "b"], BlendSettings(), SETTINGS, EvaluationSettings(), "all_purchases"
    )
    assert reranker is None
    assert "too few bought candidates" in choice.reason
    assert "(10 in a training group, fewer than 20)" in choice.reason


@pytest.mark.parametrize("rerank", [JUDGED, SETTINGS], ids=["judged", "discovery-unjudged"])
def test_the_runs_jobs_decide_as_one_call_does(rerank: RerankSettings) -> None:
    """A training run splits each protocol's decision into jobs (first held-out group; then
    the refit and the other groups; or the refit alone, unjudged) that both processes take:
    the decisions and the adopted trees are the ones `choose_reranker` makes in one call,
    for a protocol adopted (discovery, judged or not), one kept at the blend after both
    groups (all purchases), one stopped at the first group (business rules) and one sharing
    another's folds."""
    kinds = {
        "discovery": {"noise": False},
        "all_purchases": {"noise": True},
        "business_rules": {"noise": False, "flipped": True},
    }
    scores = [
        {
            protocol: fold(
                index, 200, noise=kind["noise"], flipped=kind.get("flipped", False) and index % 2 == 0
            )
            for protocol, kind in kinds.items()
        }
        for index in range(4)
    ]
    defaults = load_recommender_settings(CONFIG_DIR)
    settings = defaults.model_copy(update={"rerank": rerank, "blend": BlendSettings()})
    with BackgroundJobs(background=True) as jobs:
        choices, rerankers = rerank_all(settings, scores, ["a", "b"], {}, jobs)
        shared, _ = rerank_all(settings, scores, ["a", "b"], {"business_rules": "discovery"}, jobs)
    for protocol in kinds:
        folds = [by_protocol[protocol] for by_protocol in scores]
        alone, trees = choose_reranker(
            folds, ["a", "b"], settings.blend, rerank, settings.evaluation, protocol
        )
        assert choices[protocol] == alone
        assert (protocol in rerankers) == (trees is not None)
    assert [choices[p].adopted for p in kinds] == [True, False, False]
    assert "the other not fitted" in choices["business_rules"].reason
    assert "not clearly better" in choices["all_purchases"].reason
    assert shared["business_rules"] == choices["discovery"]
    assert (choices["discovery"].gain is None) is (rerank == SETTINGS)
    _, trees = choose_reranker(
        [by_protocol["discovery"] for by_protocol in scores],
        ["a", "b"],
        settings.blend,
        rerank,
        settings.evaluation,
        "discovery",
    )
    assert trees is not None
    for name, array in vars(trees.trees).items():
        np.testing.assert_array_equal(getattr(rerankers["discovery"].trees, name), array)
    assert rerankers["discovery"].info == trees.info


class RecordingJobs(BackgroundJobs):
    """Inline jobs that remember what was queued and dropped, in order."""

    def __init__(self) -> None:
        super().__init__(background=False)
        self.submitted: list[str] = []
        self.dropped: list[str] = []

    def submit(
        self, key: str, run: Callable[..., Any], *arguments: Any, spare: bool = False, late: bool = False
    ) -> None:
        self.submitted.append(key)
        super().submit(key, run, *arguments, spare=spare, late=late)

    def drop(self, key: str) -> None:
        self.dropped.append(key)
        super().drop(key)


def lead_noise_stop_scores() -> list[dict[str, FoldScores]]:
    """Four folds: discovery's trees lead, all purchases' read noise, business rules' lose
    on the first held-out group."""
    return [
        {
            "discovery": fold(index, 200, noise=False),  # a lead, adopted
            "all_purchases": fold(index, 200, noise=True),  # a lead on one group, not adopted
            "business_rules": fold(index, 200, noise=False, flipped=index % 2 == 0),  # stops
        }
        for index in range(4)
    ]


def recorded_decisions(
    rerank: RerankSettings,
) -> tuple[RecordingJobs, dict[str, RerankChoice], dict[str, Reranker]]:
    """`rerank_all` on `lead_noise_stop_scores` with `rerank`, its jobs recorded."""
    defaults = load_recommender_settings(CONFIG_DIR)
    settings = defaults.model_copy(update={"rerank": rerank, "blend": BlendSettings()})
    with RecordingJobs() as jobs:
        choices, rerankers = rerank_all(settings, lead_noise_stop_scores(), ["a", "b"], {}, jobs)
    return jobs, choices, rerankers


def test_the_run_queues_a_protocols_other_groups_before_its_refit() -> None:
    """Every protocol's first held-out group is queued at once. A protocol with a lead there
    queues its other group before its refit: this process, waiting for the next protocol's
    first group, runs the first queued job, so it fits that group while the other process
    ends its job and takes the refit (queued refit first, the wide stand-in's run waited 4.2
    s for the group). A protocol that stops at its first group queues neither, and a
    refit not adopted is dropped, never fitted."""
    jobs, choices, rerankers = recorded_decisions(JUDGED)
    assert jobs.submitted == [
        "reranker for discovery, held-out group 0",
        "reranker for all_purchases, held-out group 0",
        "reranker for business_rules, held-out group 0",
        "reranker for discovery, held-out group 1",
        "reranker for discovery, refit",
        "reranker for all_purchases, held-out group 1",
        "reranker for all_purchases, refit",
    ]
    assert jobs.dropped == ["reranker for all_purchases, refit"]
    assert jobs.ran_here == []  # inline: every job ran when taken, none was to go over there
    assert set(rerankers) == {"discovery"}
    assert [choices[p].adopted for p in ("discovery", "all_purchases", "business_rules")] == [
        True,
        False,
        False,
    ]


def test_an_unjudged_protocol_queues_its_refit_alone() -> None:
    """By default discovery's trees answer unjudged: its refit is queued with the other
    protocols' first groups, and no held-out group of its own."""
    jobs, choices, rerankers = recorded_decisions(SETTINGS)
    assert jobs.submitted == [
        "reranker for discovery, refit",
        "reranker for all_purchases, held-out group 0",
        "reranker for business_rules, held-out group 0",
        "reranker for all_purchases, held-out group 1",
        "reranker for all_purchases, refit",
    ]
    assert jobs.dropped == ["reranker for all_purchases, refit"]
    assert set(rerankers) == {"discovery"}
    assert choices["discovery"].reason == "always (rerank.adopt_always), not judged on held-out folds"
    assert rerankers["discovery"].info["gain"] == choices["discovery"].reason
    assert rerankers["discovery"].info["held_out_folds"] == []


def test_under_discovery_trees_clearly_worse_on_held_out_folds_still_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """By default (`rerank.adopt_always: [discovery]`) discovery's trees answer unjudged,
    even on the opposite folds above, where judged they are clearly worse and the blend
    stays: no held-out group is fitted, and the trees are refitted on every fold. Under all
    purchases the same folds keep the blend."""
    judged, _ = choose_reranker(
        opposite_folds(), ["a", "b"], BlendSettings(), UNLESS_CLEARLY_WORSE, EvaluationSettings(), "discovery"
    )
    assert judged.gain is not None
    assert judged.gain.clearly_below_zero
    assert not choose_reranker(
        opposite_folds(), ["a", "b"], BlendSettings(), SETTINGS, EvaluationSettings(), "all_purchases"
    )[0].adopted

    def no_held_out_group(*_: object) -> None:
        raise AssertionError("an unjudged protocol fits no held-out group")

    monkeypatch.setattr(rerank_module, "held_out_group", no_held_out_group)
    assert SETTINGS.adopt_always == ("discovery",)
    choice, reranker = choose_reranker(
        opposite_folds(), ["a", "b"], BlendSettings(), SETTINGS, EvaluationSettings(), "discovery"
    )
    assert choice.adopted
    assert choice.gain is None
    assert choice.folds == []
    assert choice.reason == "always (rerank.adopt_always), not judged on held-out folds"
    assert reranker is not None
    # refitted on all four folds, every customer's bought candidate among the two ranked
    assert reranker.info["bought"] == 800
    off = SETTINGS.model_copy(update={"gate": False})
    assert (
        choose_reranker(
            opposite_folds(), ["a", "b"], BlendSettings(), off, EvaluationSettings(), "all_purchases"
        )[0].reason
        == "always (rerank.gate off), not judged on held-out folds"
    )


def test_one_rule_per_protocol() -> None:
    with pytest.raises(ValueError, match="both name discovery: one rule per protocol"):
        RerankSettings(adopt_always=("discovery",), adopt_unless_clearly_worse=("discovery", "all_purchases"))
    # a settings file from before adopt_always names discovery under the older rule: it keeps it
    older = RerankSettings.model_validate({"adopt_unless_clearly_worse": ["discovery"]})
    assert older.adopt_always == ()
    assert older.adopt_unless_clearly_worse == ("discovery",)


def test_under_discovery_trees_within_noise_replace_the_blend() -> None:
    """The same noise as above: under all purchases the blend stays (not clearly better),
    under `rerank.adopt_unless_clearly_worse` the trees answer (not clearly worse),
    refitted on every fold, with the same held-out evidence."""
    folds = [fold(seed, 200, noise=True) for seed in range(4)]
    strict, _ = choose_reranker(
        folds, ["a", "b"], BlendSettings(), SETTINGS, EvaluationSettings(), "all_purchases"
    )
    choice, reranker = choose_reranker(
        folds, ["a", "b"], BlendSettings(), UNLESS_CLEARLY_WORSE, EvaluationSettings(), "discovery"
    )
    assert choice.gain == strict.gain
    assert choice.gain is not None
    assert not choice.gain.clearly_above_zero
    assert not choice.gain.clearly_below_zero
    assert not strict.adopted
    assert choice.adopted
    assert reranker is not None
    # refitted on all four folds: every bought candidate the trees score (the two that the
    # components rank; the noise put the others' purchases elsewhere)
    assert reranker.info["bought"] == sum(int(f.relevant[:, :2].sum()) for f in folds)
    assert "within noise" in choice.reason
    assert "adopt_unless_clearly_worse" in choice.reason
    lenient_everywhere = UNLESS_CLEARLY_WORSE.model_copy(
        update={"adopt_unless_clearly_worse": ("discovery", "all_purchases")}
    )
    assert choose_reranker(
        folds, ["a", "b"], BlendSettings(), lenient_everywhere, EvaluationSettings(), "all_purchases"
    )[0].adopted
    nowhere = UNLESS_CLEARLY_WORSE.model_copy(update={"adopt_unless_clearly_worse": ()})
    assert not choose_reranker(
        folds, ["a", "b"], BlendSettings(), nowhere, EvaluationSettings(), "discovery"
    )[0].adopted
