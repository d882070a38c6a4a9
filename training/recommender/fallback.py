"""A protocol answered by one of the hybrid's components alone where the test weeks show
the tuned hybrid clearly behind the peer that component answers as (`fall_back`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pandas as pd

from inference.recommender.rerank import Reranker
from inference.recommender.scoring import VECTORS, HybridModel
from storewise.settings import EvaluationSettings
from training.recommender.data import TrainData, Truth
from training.recommender.evaluate import PROTOCOLS, Evaluation, Protocol, evaluate_protocols
from training.recommender.hybrid import BlendView
from training.recommender.uncertainty import Bootstrap, Interval

# the hybrid's component that, alone, ranks as the peer does (the same scores of the same fit;
# ties, and the items the peer leaves unscored, may come in another order, so the component
# is judged on the test weeks itself): where the tuned hybrid is clearly behind the best of
# these peers there, that component alone may answer the protocol instead (`fall_back`).
# tests/training/test_fallback.py checks that each finds every customer's items where its
# peer does on the style shop; EASE and BM25 alone did not, so they are not here.
COMPONENT_OF_PEER = {
    "tifu_knn": "tifu",
    "buy_again": "buy_again",
    "repurchase": "due",
    "trending": "recent_buyers",
    "popularity": "popularity",
}
# what `fit_hybrid` computes whatever the blends read: the final model always has these
ALWAYS_FITTED = frozenset({"buy_again", *VECTORS})
# peers that rank only the customer's own purchases: nothing to offer where those are excluded
OWN_ITEMS_ONLY = frozenset({"buy_again", "repurchase"})


@dataclass(frozen=True)
class Fallback:
    """A protocol answered by one component alone: on the test weeks the tuned hybrid (the
    folds' blend or reranker) was clearly behind the peer that component ranks as, and the
    component alone clearly ahead of the tuned hybrid. The test weeks chose it, so its figure
    there is no unbiased estimate: the tuned hybrid's is kept beside it."""

    component: str
    peer: str
    tuned_ndcg: float  # the tuned hybrid's NDCG@10 on the test weeks
    tuned_minus_peer: Interval
    gain: Interval  # the component alone minus the tuned hybrid, same customers

    def describe(self) -> str:
        return (
            f"{self.component} alone: the tuned hybrid ({self.tuned_ndcg:.4f}) was clearly behind "
            f"{self.peer} on the test weeks, {self.tuned_minus_peer.describe()}; {self.component} alone "
            f"minus it {self.gain.describe()} (chosen on the test weeks)"
        )


@dataclass(frozen=True)
class Answers:
    """`fall_back`'s answer: each protocol's blend and reranker, the fallbacks taken, and
    the evaluations with the hybrid's rows as it now answers."""

    blends: dict[str, dict[str, float]]
    rerankers: dict[str, Reranker]
    fallbacks: dict[str, Fallback]
    evaluations: dict[str, dict[str, Evaluation]]


def fall_back(
    settings: EvaluationSettings,
    hybrid: HybridModel,
    data: TrainData,
    truth: Truth,
    protocols: dict[str, Protocol],
    evaluations: dict[str, dict[str, Evaluation]],
    intervals: pd.DataFrame,
    fitted: set[str],
) -> Answers:
    """Per protocol: if the tuned hybrid is clearly behind the best peer that one of its
    components ranks as (`COMPONENT_OF_PEER`; a component the final model fits: `fitted`, or
    one it always has; under discovery, not a peer of the customer's own purchases), that
    component alone is evaluated on the test weeks and answers the protocol if it is clearly
    ahead of the tuned hybrid. `intervals`: the tuned hybrid's NDCG@10 minus each model's
    (`comparison.intervals_against_hybrid`), read here rather than drawn again. Why: the test weeks are the
    latest month the final model learns from, and the folds' tuning does not always carry
    over to it (a quarter of the sample's customers: the blend −0.0219 [−0.0407, −0.0044]
    against TIFU-KNN). A hybrid clearly behind its peer is never promoted, so a shop's first
    model would leave it with nothing to serve; answering as the peer does, the shop gets
    the better of the two, and the run says which and why."""
    blends, rerankers = dict(hybrid.blends), dict(hybrid.rerankers)
    fallbacks: dict[str, Fallback] = {}
    evaluations = {protocol: dict(by_model) for protocol, by_model in evaluations.items()}
    for protocol in PROTOCOLS:
        by_model = evaluations[protocol]
        tuned = by_model["hybrid"]
        if not len(tuned.customers):  # nobody to judge it on (nothing new bought, say)
            continue
        options = [
            peer
            for peer, component in COMPONENT_OF_PEER.items()
            if peer in by_model
            and (component in fitted or component in ALWAYS_FITTED)
            and component in hybrid.available
            and not (protocol == "discovery" and peer in OWN_ITEMS_ONLY)
        ]
        if not options:
            continue
        peer = max(options, key=lambda name: float(by_model[name].ndcg.mean()))
        row = intervals[(intervals["protocol"] == protocol) & (intervals["model"] == peer)].iloc[0]
        behind = Interval(float(row["mean"]), float(row["low"]), float(row["high"]))
        if not behind.clearly_below_zero:
            continue
        bootstrap = customer_bootstrap(settings, tuned)  # the same draws as `intervals`
        component = COMPONENT_OF_PEER[peer]
        alone = copy.copy(hybrid)  # shares the arrays; its scoring caches start empty
        alone.blends = {**blends, protocol: {component: 1.0}}
        alone.rerankers = {name: trees for name, trees in rerankers.items() if name != protocol}
        view = BlendView(alone, protocol, protocols[protocol].excluded)
        evaluation = evaluate_protocols(view, data, truth, {protocol: protocols[protocol]})[protocol]
        gain = bootstrap.interval(evaluation.ndcg - tuned.ndcg)
        if not gain.clearly_above_zero:
            continue
        blends[protocol] = {component: 1.0}
        rerankers.pop(protocol, None)
        by_model["hybrid"] = evaluation
        fallbacks[protocol] = Fallback(component, peer, float(tuned.ndcg.mean()), behind, gain)
    return Answers(blends, rerankers, fallbacks, evaluations)


def customer_bootstrap(settings: EvaluationSettings, hybrid: Evaluation) -> Bootstrap:
    """The test weeks' resamples over the customers `hybrid` was judged on (every model there
    is judged on the same ones)."""
    return Bootstrap(
        hybrid.customers,
        samples=settings.bootstrap_samples,
        confidence=settings.confidence,
        seed=settings.bootstrap_seed,
    )
