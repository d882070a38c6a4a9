"""The pieces that make the recommender's comparisons honest, each against an answer worked
out by hand: TIFU-KNN's vectors and scores, the paired bootstrap interval, the blend tuning
(it blends only what pays), recall on repeat and new items, and the promotion gate refusing
a challenger that is not clearly better than the champion."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
import scipy.sparse as sp
from mlflow.entities import Run

from inference.recommender.rerank import CONTEXT
from storewise.settings import TifuSettings, load_recommender_settings
from training.promotion import GATES, judge, same_split
from training.recommender import tifu
from training.recommender.background import TEST_WEEKS, BackgroundJobs, LaterFit
from training.recommender.blend import FoldScores, Validation, drop_unpaid, shrink, tune
from training.recommender.data import TrainData
from training.recommender.evaluate import PROTOCOLS, repeat_and_new_recall
from training.recommender.models import LightFmHybrid
from training.recommender.run_record import TEST_CATALOGUE
from training.recommender.tifu import basket_weights, tifu_scores, user_vectors
from training.recommender.trainer import Trainer
from training.recommender.uncertainty import Bootstrap, Interval, paired_interval
from training.recommender.validation import (
    LightFmChoice,
    confirm_lightfm,
    fold_key,
    lightfm_gains,
    tune_all,
)

# -- TIFU-KNN ---------------------------------------------------------------------------


def test_basket_weights_follow_the_reference_grouping_by_hand() -> None:
    # one customer, three baskets, two groups: 3 // 2 = 1 basket in the first group, the
    # later group one basket larger (2). Basket weight = within ** (baskets after it)
    # * group ** (groups after its group) / (its group's size * number of groups).
    settings = TifuSettings(within_decay=0.5, group_decay=0.5, groups=2, neighbours=1, alpha=0.5)
    weights = basket_weights(np.array([0, 0, 0]), settings)
    expected = [0.25 * 0.5 / (1 * 2), 0.5 * 1 / (2 * 2), 1 * 1 / (2 * 2)]
    np.testing.assert_allclose(weights, expected)


def test_fewer_baskets_than_groups_make_one_group_each() -> None:
    settings = TifuSettings(within_decay=0.5, group_decay=0.5, groups=3, neighbours=1, alpha=0.5)
    # two baskets, three groups: groups 0 and 1 (of 3), decayed 0.5 ** (3 - 1 - group), / 2 groups
    np.testing.assert_allclose(basket_weights(np.array([4, 4]), settings), [0.5 * 0.25 / 2, 1 * 0.5 / 2])


def tiny_history() -> tuple[sp.csr_matrix, np.ndarray]:
    """u0: {0} then {0, 1}; u1: {0, 1} then {2}; u2: {3}. Four items."""
    baskets = sp.csr_matrix(
        np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
    )
    return baskets, np.array([0, 0, 1, 1, 2])


@pytest.mark.parametrize("dense_above", [-1.0, 2.0], ids=["dense", "sparse"])
def test_tifu_scores_blend_own_and_nearest_neighbour_vectors_by_hand(
    dense_above: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tifu, "DENSE_ABOVE", dense_above)  # both ways of scoring a chunk
    # one group: a basket counts within ** (baskets after it) / (baskets of the customer)
    settings = TifuSettings(within_decay=0.5, groups=1, neighbours=1, alpha=0.5, neighbour_pool=100)
    baskets, users = tiny_history()
    vectors = user_vectors(baskets, users, 3, settings)
    v0, v1, v2 = np.array([0.75, 0.5, 0, 0]), np.array([0.25, 0.25, 0.5, 0]), np.array([0.0, 0, 0, 1])
    np.testing.assert_allclose(vectors.toarray(), np.vstack([v0, v1, v2]), rtol=1e-6)
    full, explore = tifu_scores(vectors, np.arange(3), settings, keep=4)
    # u0 and u1 are each other's nearest (cosine 0.57); u2 shares nothing with anyone, so it
    # has no neighbour and keeps half its own vector
    mixed = 0.5 * v0 + 0.5 * v1
    np.testing.assert_allclose(full.toarray(), np.vstack([mixed, mixed, 0.5 * v2]), rtol=1e-6)
    # explore, the neighbours' part on items never bought: u0 gets u1's item 2 (0.5 * 0.5);
    # u1's neighbour u0 bought nothing u1 lacks, and u2 has no neighbour
    expected = np.zeros((3, 4))
    expected[0, 2] = 0.25
    np.testing.assert_allclose(explore.toarray(), expected, rtol=1e-6)


def test_dense_and_sparse_tifu_give_the_same_best_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many customers with ties in their scores: both ways keep the same items and values
    (ties to the lower item, neighbours tied on cosine to the lower pool index)."""
    rng = np.random.default_rng(5)
    baskets = sp.csr_matrix((rng.random((400, 30)) < 0.08).astype(np.float32))
    users = np.sort(rng.integers(0, 120, 400))
    settings = TifuSettings(neighbours=7, groups=3, neighbour_pool=60)
    vectors = user_vectors(baskets, users, 120, settings)
    kept = {}
    for way, dense_above in (("dense", -1.0), ("sparse", 2.0)):
        monkeypatch.setattr(tifu, "DENSE_ABOVE", dense_above)
        kept[way] = tifu_scores(vectors, np.arange(120), settings, keep=5)
    for dense, sparse in zip(kept["dense"], kept["sparse"], strict=True):
        assert dense.nnz > 0
        assert (dense != sparse).nnz == 0


# -- the paired bootstrap ---------------------------------------------------------------


def test_a_constant_difference_has_a_zero_width_interval() -> None:
    interval = paired_interval(np.full(50, 0.02), samples=500, confidence=0.9, seed=1)
    assert interval == Interval(pytest.approx(0.02), pytest.approx(0.02), pytest.approx(0.02))  # type: ignore[arg-type]
    assert interval.clearly_above_zero


def test_the_interval_of_a_fair_coin_matches_the_normal_approximation() -> None:
    # 400 customers, half +1, half -1: mean 0, standard error 1 / sqrt(400) = 0.05, so the
    # 90% interval is about 0 ± 1.645 * 0.05 = ±0.082
    difference = np.tile([1.0, -1.0], 200)
    interval = paired_interval(difference, samples=4000, confidence=0.9, seed=3)
    assert interval.mean == pytest.approx(0.0)
    assert interval.low == pytest.approx(-0.082, abs=0.01)
    assert interval.high == pytest.approx(0.082, abs=0.01)
    assert not interval.clearly_above_zero
    assert not interval.clearly_below_zero


def test_a_customer_seen_in_two_folds_is_one_cluster_not_two_pieces_of_evidence() -> None:
    rng = np.random.default_rng(5)
    once = rng.normal(0.01, 0.1, 300)
    twice = np.concatenate([once, once])
    customers = np.arange(300).astype(str)
    clustered = Bootstrap(np.concatenate([customers, customers]), samples=1000, confidence=0.9, seed=2)
    alone = Bootstrap(customers, samples=1000, confidence=0.9, seed=2)
    # the same customers drawn the same way: the duplicate rows add no certainty
    assert clustered.interval(twice) == alone.interval(once)
    naive = paired_interval(twice, samples=1000, confidence=0.9, seed=2)
    assert naive.high - naive.low < 0.8 * (alone.interval(once).high - alone.interval(once).low)


# -- the blend tuning -------------------------------------------------------------------


def two_group_validation(users_per_group: int = 150) -> Validation:
    """12 candidates per customer, one of them bought. Component `a` ranks the bought item
    first for the first group and nothing for the second; `b` the reverse; `decoy` ranks a
    never-bought item first for everyone. The tie-break puts the ten decoy items (2..11)
    above items 0 and 1, so an item no component ranks falls out of the top 10."""
    n = 2 * users_per_group
    width = 12
    first = np.arange(n) < users_per_group
    a = np.zeros((n, width), np.float32)
    b = np.zeros((n, width), np.float32)
    decoy = np.zeros((n, width), np.float32)
    a[first, 0] = 1.0
    b[~first, 1] = 1.0
    decoy[:, 5] = 1.0
    relevant = np.zeros((n, width), bool)
    relevant[first, 0] = True
    relevant[~first, 1] = True
    tie_break = np.tile(np.r_[0, 0, np.linspace(2e-7, 1e-7, 10)].astype(np.float32), (n, 1))
    fold = FoldScores(
        candidates=np.tile(np.arange(width), (n, 1)),
        values={"a": a, "b": b, "decoy": decoy},
        blocked=np.zeros((n, width), bool),
        relevant=relevant,
        ideal=np.ones(n),
        tie_break=tie_break,
        context=np.zeros((n, width, len(CONTEXT)), np.float32),
        customers=np.arange(n).astype(str),
    )
    return Validation([fold], Bootstrap(fold.customers, samples=500, confidence=0.9, seed=1))


def test_the_blend_takes_both_complementary_components_and_leaves_the_decoy_out() -> None:
    validation = two_group_validation()
    tuned = tune(validation, ["a", "b", "decoy"], (0, 0.5, 1.0), 2, (0, 0.5, 1.0))
    # alone, a and b each get the bought item first for half the customers (NDCG 1) and
    # nothing in the top 10 for the other half: 0.5; together every customer gets NDCG 1
    assert tuned.singles == {"a": pytest.approx(0.5), "b": pytest.approx(0.5), "decoy": 0.0}
    assert set(tuned.weights) == {"a", "b"}
    assert tuned.value == pytest.approx(1.0)
    for alone in ("a", "b"):  # per customer the gain is 0 or 1, half each
        assert tuned.versus_components[alone].mean == pytest.approx(0.5)
        assert tuned.versus_components[alone].clearly_above_zero


def test_a_component_that_adds_nothing_is_not_blended() -> None:
    validation = two_group_validation()
    # without b, nothing can help a: the decoy only pushes the bought item down
    tuned = tune(validation, ["a", "decoy"], (0, 0.5, 1.0, 2.0), 2, (0, 0.5, 1.0))
    assert tuned.weights == {"a": 1.0}
    assert tuned.shrinkage == 0.0
    assert tuned.value == pytest.approx(0.5)


def test_a_shrunk_blend_keeps_its_components_in_a_fixed_order() -> None:
    """The best component first, then the tuned blend's others in its order: not a set's
    order, which depends on the process's string hashes (the blend's float32 sum in another
    order moved ties, and a run's figures, from one run to the next)."""
    validation = two_group_validation()
    mix, share = shrink(validation, {"a": 1.0}, {"b": 1.0, "a": 1.0}, (0, 0.5, 1.0))
    # half a (on the blend's scale, x 2), half the blend: a 0.5 x 2 + 0.5, b 0.5 put both
    # bought items first; so does the blend alone, and at the same lower bound the smaller
    # share is kept
    assert share == 0.5
    assert list(mix) == ["a", "b"]
    assert mix == {"a": 1.5, "b": 0.5}


def item_zero_fold(values: dict[str, np.ndarray]) -> FoldScores:
    """One fold of `values`' customers (rows) over 12 candidates, each customer's one bought
    item being item 0; the tie-break puts ten unbought items (2..11) above item 0, so a
    customer whose item no component ranks scores 0."""
    n, width = next(iter(values.values())).shape
    relevant = np.zeros((n, width), bool)
    relevant[:, 0] = True
    return FoldScores(
        candidates=np.tile(np.arange(width), (n, 1)),
        values=values,
        blocked=np.zeros((n, width), bool),
        relevant=relevant,
        ideal=np.ones(n),
        tie_break=np.tile(np.r_[0, 0, np.linspace(2e-7, 1e-7, 10)].astype(np.float32), (n, 1)),
        customers=np.arange(n).astype(str),
        context=np.zeros((n, width, len(CONTEXT)), np.float32),
    )


def helpers_validation() -> Validation:
    """300 customers, one bought item each (item 0); `base` ranks it first for the first 288,
    each of the helpers h0..h5 for two of the other twelve."""
    n, width, helpers = 300, 12, 6
    values = {name: np.zeros((n, width), np.float32) for name in ["base", *(f"h{i}" for i in range(helpers))]}
    values["base"][: n - 2 * helpers, 0] = 1.0
    for i in range(helpers):
        start = n - 2 * helpers + 2 * i
        values[f"h{i}"][start : start + 2, 0] = 1.0
    fold = item_zero_fold(values)
    return Validation([fold], Bootstrap(fold.customers, samples=1000, confidence=0.9, seed=1))


def test_dropping_stops_when_the_drops_together_cost_more_than_noise() -> None:
    validation = helpers_validation()
    weights = {"base": 1.0, **{f"h{i}": 1.0 for i in range(6)}}
    kept, dropped = drop_unpaid(validation, weights)
    # one helper's loss is two customers of 300: a resample misses both with probability
    # about e^-2 = 0.14, so its 90% interval starts at zero (within noise). Two helpers'
    # loss is four customers (missed with probability e^-4 = 0.02): clearly above zero.
    # Counted one drop at a time each loss is two customers, and all six helpers would go.
    assert dropped == ["h0"]
    assert kept == {"base": 1.0, **{f"h{i}": 1.0 for i in range(1, 6)}}
    assert validation.ndcg(kept).mean() == pytest.approx(298 / 300)


def lightfm_fold(twin_covers: int) -> FoldScores:
    """300 customers, one bought item each (item 0): `base` ranks it first for the first 288,
    `lightfm` for six of the other twelve (288..293), `twin` for the first `twin_covers` of
    those six."""
    values = {name: np.zeros((300, 12), np.float32) for name in ("base", "lightfm", "twin")}
    values["base"][:288, 0] = 1.0
    values["lightfm"][288:294, 0] = 1.0
    values["twin"][288 : 288 + twin_covers, 0] = 1.0
    return item_zero_fold(values)


@pytest.mark.parametrize(
    ("twin_covers", "gain", "pays"),
    [(5, 1 / 300, False), (0, 6 / 300, True)],
    ids=["another-component-does-nearly-the-same", "nothing-else-does-it"],
)
def test_lightfm_is_fitted_on_the_other_folds_only_if_it_clearly_pays_its_way(
    twin_covers: int, gain: float, pays: bool
) -> None:
    """LightFM stays in the latest fold's blend either way (dropping it costs six customers
    of 300: clearly worse). With a twin that gets five of its six customers, the blend tuned
    without LightFM loses only one customer of 300 (a resample misses it with probability
    about e^-1 = 0.37: within noise); with no twin it loses all six (clearly worse)."""
    settings = load_recommender_settings()
    trainer = cast(Trainer, SimpleNamespace(settings=settings))
    fold = lightfm_fold(twin_covers)
    scores = [dict.fromkeys(PROTOCOLS, fold)]
    same_as = {protocol: PROTOCOLS[0] for protocol in PROTOCOLS[1:]}
    components = ["base", "lightfm", "twin"]
    assert "lightfm" in tune_all(trainer, scores, components, same_as)[PROTOCOLS[0]].weights
    gains = lightfm_gains(trainer, scores, components, same_as)
    assert set(gains) == {PROTOCOLS[0]}  # the protocols sharing its tuning are not tuned again
    assert gains[PROTOCOLS[0]].mean == pytest.approx(gain, abs=1e-6)
    assert gains[PROTOCOLS[0]].clearly_above_zero is pays


# -- recall on repeat and new items -----------------------------------------------------


def test_recall_on_repeat_and_new_items_by_hand() -> None:
    ranked = np.array([[0, 1, 2, *range(10, 17)], [5, *range(20, 29)]])
    truth = [np.array([0, 3, 4]), np.array([5, 6])]
    bought_before = sp.csr_matrix((np.ones(3), ([0, 0, 1], [0, 3, 6])), shape=(2, 30))
    result = repeat_and_new_recall(ranked, truth, bought_before)
    # customer 0: repeat items {0, 3}, found {0} -> 1/2; new {4}, found none -> 0
    # customer 1: repeat {6}, none found -> 0; new {5}, found -> 1
    assert result["repeat_recall_at_10"] == pytest.approx((0.5 + 0) / 2)
    assert result["new_recall_at_10"] == pytest.approx((0 + 1) / 2)


# -- the promotion gate -----------------------------------------------------------------


def recommender_run(
    value: float, peer: Interval, split: str = "test 2026-01-01", catalogue: str | None = TEST_CATALOGUE
) -> Run:
    """A run as the gate reads it: tags and metrics only."""
    metrics: dict[str, Any] = {"ndcg_at_10": value}
    for part in ("mean", "low", "high"):
        metrics[f"discovery.hybrid_minus.ease_binary.{part}"] = getattr(peer, part)
    tags = {
        "primary_protocol": "discovery",
        "beats_baselines.discovery": str(peer.mean > 0).lower(),
        "best_other.discovery": f"ease_binary {value - peer.mean:.4f}",
        "data_hash": "abc",
        "split": split,
        **({"test_catalogue": catalogue} if catalogue else {}),
    }
    return cast(Run, SimpleNamespace(data=SimpleNamespace(metrics=metrics, tags=tags)))


GATE = GATES["storewise-recommender"]
AHEAD = Interval(0.01, 0.004, 0.016)


def test_the_gate_keeps_the_champion_when_the_challenger_is_not_clearly_better() -> None:
    champion = recommender_run(0.100, AHEAD)
    challenger = recommender_run(0.103, AHEAD)
    promoted, reason = judge(GATE, challenger, 0.103, champion, "3", Interval(0.003, -0.002, 0.008))
    assert not promoted
    assert "not clearly better than champion v3" in reason
    assert "+0.0030 [-0.0020, +0.0080]" in reason
    assert reason.endswith("champion v3 stays")


def test_the_gate_promotes_a_challenger_clearly_better_than_the_champion() -> None:
    champion = recommender_run(0.100, AHEAD)
    challenger = recommender_run(0.110, AHEAD)
    promoted, reason = judge(GATE, challenger, 0.110, champion, "3", Interval(0.01, 0.002, 0.018))
    assert promoted
    assert "clearly above champion v3" in reason


def test_a_champion_whose_test_truth_counted_unlaunched_items_is_not_compared_customer_by_customer() -> None:
    """A champion logged before the test weeks' catalogue was the one at their start (no
    `test_catalogue` tag) scored other truths: a challenger that beats its baselines is
    promoted, and the reason says why the two were not compared."""
    older = recommender_run(0.100, AHEAD, catalogue=None)
    challenger = recommender_run(0.099, AHEAD)
    assert not same_split(challenger, older)
    assert same_split(challenger, recommender_run(0.100, AHEAD))
    promoted, reason = judge(GATE, challenger, 0.099, older, "3", None)
    assert promoted
    assert "cannot be compared" in reason


def test_the_gate_refuses_a_model_clearly_behind_its_best_peer_even_as_first_champion() -> None:
    behind = recommender_run(0.080, Interval(-0.01, -0.018, -0.003))
    promoted, reason = judge(GATE, behind, 0.080, None, None)
    assert not promoted
    assert "clearly behind its best peer" in reason
    # within noise of its best peer, a first champion is served (there is nothing better)
    level = recommender_run(0.080, Interval(-0.002, -0.009, 0.004))
    promoted, reason = judge(GATE, level, 0.080, None, None)
    assert promoted
    assert "behind its best peer within noise" in reason
    # the same answers as its best peer for every customer (a protocol answered as that peer)
    same = recommender_run(0.080, Interval(0.0, 0.0, 0.0))
    promoted, reason = judge(GATE, same, 0.080, None, None)
    assert promoted
    assert "level with its best peer" in reason


def confirmation_folds(loses: int) -> list[dict[str, FoldScores]]:
    """Two folds of 300 customers, one bought item each (item 0): `base` ranks it first for
    the first 288, `lightfm` for six of the others (288..293). In the second fold `base`
    ranks the first `loses` customers' item 0 low (rank score 0.04) and `lightfm` ranks
    item 1 first for them: any weight that gets LightFM its six puts their item 1 first."""
    folds = []
    for second in (False, True):
        values = {name: np.zeros((300, 12), np.float32) for name in ("base", "lightfm")}
        values["base"][:288, 0] = 1.0
        values["lightfm"][288:294, 0] = 1.0
        if second:
            values["base"][:loses, 0] = 0.04
            values["lightfm"][:loses, 1] = 1.0
        folds.append(dict.fromkeys(PROTOCOLS, item_zero_fold(values)))
    return folds


@pytest.mark.parametrize(
    ("loses", "stays"), [(0, True), (16, False)], ids=["its-gain-holds", "the-second-fold-takes-it-back"]
)
def test_lightfm_stays_in_the_blends_only_if_the_latest_two_folds_pooled_confirm_its_gain(
    loses: int, stays: bool
) -> None:
    """On the latest fold alone LightFM gets six customers of 300 first place (clearly: the
    screen keeps it). Pooled with a second fold where it does the same, its gain is 12 of
    600 (clearly); where it also costs 16 others their first place (each 1 - 1 / log2(3)),
    no blend tuned on both keeps it: it leaves the components and every fold's scores (and
    the run never queues its other fits). Kept, its other fits are queued, the test weeks'
    as a spare job: this process never fits it while waiting for another result."""
    settings = load_recommender_settings()
    trainer = cast(
        Trainer,
        SimpleNamespace(
            settings=settings, lightfm=lambda epochs, overrides: LightFmHybrid(settings.lightfm, epochs)
        ),
    )
    scores = confirmation_folds(loses)
    same_as = {protocol: PROTOCOLS[0] for protocol in PROTOCOLS[1:]}
    screen = lightfm_gains(trainer, scores[:1], ["base", "lightfm"], same_as)
    assert screen[PROTOCOLS[0]].mean == pytest.approx(6 / 300, abs=1e-6)
    assert screen[PROTOCOLS[0]].clearly_above_zero
    choice = LightFmChoice(epochs=5, value=0.0, curve=[], screen=screen)
    components = ["base", "lightfm"]
    unused = cast(TrainData, None)  # queued, never fitted: the jobs close untaken
    rest = {fold_key(2): LaterFit(unused), TEST_WEEKS: LaterFit(unused, 10, spare=True)}
    with BackgroundJobs(background=False) as jobs:
        confirm_lightfm(trainer, choice, scores, components, same_as, jobs, rest)
        assert all(jobs.queued(key) is stays for key in rest)
        if stays:
            assert [jobs._jobs[key].spare for key in rest] == [False, True]
            assert jobs._jobs[TEST_WEEKS].arguments[0].epochs == 5  # from scratch, the chosen epochs
    assert choice.blended is stays
    assert ("lightfm" in components) is stays
    assert all(("lightfm" in fold[protocol].values) is stays for fold in scores for protocol in PROTOCOLS)
    assert choice.confirmation is not None
    if stays:
        assert set(choice.confirmation) == {PROTOCOLS[0]}
        assert choice.confirmation[PROTOCOLS[0]].mean == pytest.approx(12 / 600, abs=1e-6)
        assert choice.confirmation[PROTOCOLS[0]].clearly_above_zero
    else:
        assert choice.confirmation == {}  # no blend tuned on both folds keeps it
