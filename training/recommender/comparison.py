"""The side-by-side comparison on the test weeks: the hybrid (each protocol's blend or
reranker, as the service answers it), the baselines, the peers and LightFM alone (when a blend uses it),
fitted on the same data and judged under the same masks; and for every model, the paired
bootstrap interval of the hybrid's NDCG@10 minus its own, over the test customers.
Ranking the test customers is most of it: the hybrid's and LightFM's rankings are split
into parts that both processes take (`submit_ranking`), and a protocol whose hybrid answers
are another's shares that one's evaluation (`same_answers`). A protocol whose hybrid is
clearly behind a peer that one of its components ranks as is then answered by that
component alone, if it is clearly ahead (`fallback.py`): the comparison's hybrid is what
the final model answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from inference.recommender.rerank import Reranker
from inference.recommender.scoring import HybridModel
from storewise import columns as c
from storewise.settings import EvaluationSettings, RecommenderSettings
from training.recommender.background import TEST_PEERS, TEST_WEEKS, BackgroundJobs
from training.recommender.data import TrainData, Truth
from training.recommender.evaluate import (
    PROTOCOLS,
    Evaluation,
    Protocol,
    batch_aligned_parts,
    evaluate_protocols,
    records,
    top_items,
)
from training.recommender.fallback import Fallback, customer_bootstrap, fall_back
from training.recommender.hybrid import BlendView, with_lightfm
from training.recommender.metrics import ranking_metrics
from training.recommender.models import Ease, ItemKnnBm25, LightFmHybrid, Recommender, Repurchase
from training.recommender.trainer import Trainer, peers
from training.recommender.validation import LightFmChoice

NOT_PEERS = ("hybrid", "cold_start")
RANKING_PARTS = 2  # jobs per model ranking the test customers: both processes take them


def used_components(blends: dict[str, dict[str, float]], rerankers: dict[str, Reranker]) -> set[str]:
    """The components some protocol's blend or reranker reads: the ones a hybrid must fit."""
    used = {name for weights in blends.values() for name in weights}
    return used | {name for reranker in rerankers.values() for name in reranker.components}


@dataclass
class Comparison:
    table: pd.DataFrame  # flat {model, protocol, metric, k, value} rows
    intervals: pd.DataFrame  # protocol, model, mean, low, high: the hybrid's NDCG@10 minus the model's
    per_customer: pd.DataFrame  # protocol, model, customer_id, ndcg_at_10
    # the test weeks' LightFM (the final fit may continue it); None when no blend uses it
    lightfm: LightFmHybrid | None
    # what each protocol answers with from here on: the tuned ones, or a component alone where
    # the test weeks showed the tuned hybrid clearly behind its peer (`fallbacks`, `fall_back`)
    blends: dict[str, dict[str, float]]
    rerankers: dict[str, Reranker]
    fallbacks: dict[str, Fallback]


def test_comparison(
    trainer: Trainer,
    choice: LightFmChoice,
    blends: dict[str, dict[str, float]],
    jobs: BackgroundJobs,
    data: TrainData,
    truth: Truth,
    rerankers: dict[str, Reranker],
) -> Comparison:
    """`data`: the data at the test weeks' start, `truth` what was bought in them; `jobs`
    may hold the peers' evaluations (`TEST_PEERS`) and the test weeks' LightFM
    (`TEST_WEEKS`), done in the other process. LightFM alone is compared only when a blend
    uses it (or warm starts continue it)."""
    protocols = trainer.protocols(data)
    used = used_components(blends, rerankers)
    # the peers first (the test weeks' LightFM may still be fitting in the other process),
    # then the hybrid, taking what they fitted that it fits too
    done = (
        jobs.take(TEST_PEERS)
        if TEST_PEERS in jobs
        else evaluate_peers(data, truth, protocols, trainer.settings)
    )
    hybrid = trainer.hybrid(data, None, components=used, users=truth.user_index, fitted=done.fits.arrays())
    hybrid.blends, hybrid.rerankers = blends, rerankers
    by_peer = done.evaluations
    lightfm: LightFmHybrid | None = None
    if TEST_WEEKS in jobs:
        lightfm = jobs.take(TEST_WEEKS)
    elif choice.blended or choice.fold_models:  # fold_models: the warm chain goes on from here
        lightfm = choice.continued(trainer, data, choice.latest_fold_model)
    if lightfm is not None and "lightfm" in used:
        with_lightfm(hybrid, lightfm, data)
        # as the service reads it, for the customers judged here
        hybrid.precompute_lightfm_top(lightfm.top_items, truth.user_index)
    hybrid_by_protocol, lightfm_by_protocol = ranked_evaluations(
        hybrid, lightfm, jobs, data, truth, protocols
    )
    evaluations: dict[str, dict[str, Evaluation]] = {
        protocol: {"hybrid": hybrid_by_protocol[protocol], **by_peer[protocol]} for protocol in PROTOCOLS
    }
    if lightfm is not None:
        for protocol, evaluation in lightfm_by_protocol.items():
            evaluations[protocol][lightfm.name] = evaluation
    settings = trainer.settings.evaluation
    intervals = intervals_against_hybrid(settings, evaluations)
    answers = fall_back(settings, hybrid, data, truth, protocols, evaluations, intervals, used)
    if answers.fallbacks:  # the hybrid's rows changed: its intervals too
        evaluations, intervals = answers.evaluations, intervals_against_hybrid(settings, answers.evaluations)
    rows: list[dict[str, object]] = []
    for protocol, by_model in evaluations.items():
        for name, evaluation in by_model.items():
            rows += records(name, protocol, evaluation.metrics)
    rows += records("cold_start", "all_purchases", cold_start_metrics(hybrid, truth))
    return Comparison(
        pd.DataFrame(rows),
        intervals,
        per_customer(evaluations),
        lightfm,
        answers.blends,
        answers.rerankers,
        answers.fallbacks,
    )


def ranked_evaluations(
    hybrid: HybridModel,
    lightfm: LightFmHybrid | None,
    jobs: BackgroundJobs,
    data: TrainData,
    truth: Truth,
    protocols: dict[str, Protocol],
) -> tuple[dict[str, Evaluation], dict[str, Evaluation]]:
    """The hybrid's evaluation under each protocol (its blend or reranker there) and LightFM
    alone's (none without `lightfm`). Their rankings of the test customers are queued first,
    in parts that both processes take (`submit_ranking`)."""
    same_as = same_answers(hybrid, protocols)
    views = {
        protocol: BlendView(hybrid, protocol, protocols[protocol].excluded)
        for protocol in PROTOCOLS
        if protocol not in same_as
    }
    pending = {
        protocol: submit_ranking(
            jobs, f"hybrid for {protocol}", view, truth.user_index, {protocol: protocols[protocol]}
        )
        for protocol, view in views.items()
    }
    if lightfm is not None:
        pending[lightfm.name] = submit_ranking(jobs, lightfm.name, lightfm, truth.user_index, protocols)
    by_protocol: dict[str, Evaluation] = {}
    for protocol, view in views.items():
        ranked = take_ranking(jobs, pending[protocol])
        by_protocol[protocol] = evaluate_protocols(
            view, data, truth, {protocol: protocols[protocol]}, ranked
        )[protocol]
    for protocol, earlier in same_as.items():
        by_protocol[protocol] = by_protocol[earlier]
    if lightfm is None:
        return by_protocol, {}
    ranked = take_ranking(jobs, pending[lightfm.name])
    return by_protocol, evaluate_protocols(lightfm, data, truth, protocols, ranked)


def same_answers(hybrid: HybridModel, protocols: dict[str, Protocol]) -> dict[str, str]:
    """Protocols whose hybrid answers are an earlier protocol's (the same items excluded, the
    same reranker or blend): they share its evaluation. On a shop with no one-time
    categories, business rules is all purchases."""
    same: dict[str, str] = {}
    for protocol in PROTOCOLS:
        for earlier in PROTOCOLS[: PROTOCOLS.index(protocol)]:
            reranker = hybrid.rerankers.get(protocol)
            if (
                earlier not in same
                and reranker is hybrid.rerankers.get(earlier)
                and (reranker is not None or hybrid.blends[protocol] == hybrid.blends[earlier])
                and (protocols[protocol].excluded != protocols[earlier].excluded).nnz == 0
            ):
                same[protocol] = earlier
                break
    return same


def submit_ranking(
    jobs: BackgroundJobs, label: str, model: Recommender, users: np.ndarray, protocols: dict[str, Protocol]
) -> list[str]:
    """`model`'s ranking of `users` (`top_items`) in `RANKING_PARTS` jobs (`take_ranking`):
    ranking the test customers was most of the test comparison's time (the hybrid's 9.5 of
    the large demo shop's 12 s), in this process while the other one idled."""
    keys = []
    parts = batch_aligned_parts(users, RANKING_PARTS)
    for index, part in enumerate(parts):
        keys.append(f"{label}: test customers, part {index + 1} of {len(parts)}")
        jobs.submit(keys[-1], top_items, model, part, protocols)
    return keys


def take_ranking(jobs: BackgroundJobs, keys: list[str]) -> dict[str, np.ndarray]:
    """`submit_ranking`'s parts, stacked in the users' order."""
    parts = [jobs.take(key) for key in keys]
    return {name: np.vstack([part[name] for part in parts]) for name in parts[0]}


@dataclass(frozen=True)
class PeerFits:
    """What the test weeks' peers fitted that the hybrid fits too, on the same data with
    the same settings: EASE on bought/not-bought, BM25 on counts and repurchase timing's
    scores. The peers come first (in the other process when there is one); the hybrid then
    takes these instead of fitting them again (2.3 s of CPU on the wide stand-in, at the end of the run
    where this process is the one still busy)."""

    ease: sp.csr_matrix | None = None
    bm25: sp.csr_matrix | None = None
    due: sp.csr_matrix | None = None

    def arrays(self) -> dict[str, sp.csr_matrix]:
        """`fit_hybrid`'s `fitted`: the ones the peers fitted."""
        found = {"ease": self.ease, "bm25": self.bm25, "due": self.due}
        return {name: array for name, array in found.items() if array is not None}


@dataclass(frozen=True)
class PeerResults:
    """`evaluate_peers`' answer: the peers' evaluations and the fits the hybrid takes."""

    evaluations: dict[str, dict[str, Evaluation]]  # protocol -> peer -> evaluation
    fits: PeerFits


def evaluate_peers(
    data: TrainData,
    truth: Truth,
    protocols: dict[str, Protocol],
    settings: RecommenderSettings,
) -> PeerResults:
    """Every peer fitted on `data` and evaluated under every protocol, with what they
    fitted that the hybrid fits too (`PeerFits`)."""
    by_peer: dict[str, dict[str, Evaluation]] = {protocol: {} for protocol in protocols}
    fits: dict[str, sp.csr_matrix] = {}
    for peer in peers(data.n_items, settings):
        fits.update(hybrid_arrays(peer.fit(data)))
        for protocol, evaluation in evaluate_protocols(peer, data, truth, protocols).items():
            by_peer[protocol][peer.name] = evaluation
    return PeerResults(by_peer, PeerFits(**fits))


def hybrid_arrays(peer: Recommender) -> dict[str, sp.csr_matrix]:
    """The arrays of a fitted `peer` that `fit_hybrid` computes the same way (`PeerFits`)."""
    if isinstance(peer, Ease) and peer.binary and peer.source == "purchases":
        return {"ease": peer.similarity}
    if isinstance(peer, ItemKnnBm25) and not peer.binary and peer.source == "purchases":
        return {"bm25": peer.similarity}
    if isinstance(peer, Repurchase):
        return {"due": peer.due}
    return {}


def submit_peers(trainer: Trainer, jobs: BackgroundJobs, data: TrainData, truth: Truth) -> None:
    """Submit the test weeks' peers (`evaluate_peers` on `data`, the data at the window's
    start, judged on `truth`) to `jobs`: they depend on nothing the validation decides."""
    jobs.submit(TEST_PEERS, evaluate_peers, data, truth, trainer.protocols(data), trainer.settings)


def intervals_against_hybrid(
    settings: EvaluationSettings, evaluations: dict[str, dict[str, Evaluation]]
) -> pd.DataFrame:
    rows = []
    for protocol, by_model in evaluations.items():
        hybrid = by_model["hybrid"]
        bootstrap = customer_bootstrap(settings, hybrid)
        for name, evaluation in by_model.items():
            if name in NOT_PEERS:
                continue
            assert np.array_equal(evaluation.customers, hybrid.customers), "models judged on other customers"
            interval = bootstrap.interval(hybrid.ndcg - evaluation.ndcg)
            rows.append(
                {
                    "protocol": protocol,
                    "model": name,
                    "mean": interval.mean,
                    "low": interval.low,
                    "high": interval.high,
                }
            )
    return pd.DataFrame(rows, columns=["protocol", "model", "mean", "low", "high"])


def per_customer(evaluations: dict[str, dict[str, Evaluation]]) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "protocol": protocol,
                "model": name,
                c.CUSTOMER_ID: evaluation.customers,
                "ndcg_at_10": evaluation.ndcg.round(6),
            }
        )
        for protocol, by_model in evaluations.items()
        for name, evaluation in by_model.items()
    ]
    return pd.concat(frames, ignore_index=True)


def cold_start_metrics(model: HybridModel, truth: Truth) -> dict[str, float]:
    """Customers buying in the test weeks with no history: what trending alone gets them."""
    if not len(truth.cold_start_customers):
        return {"users": 0.0}
    ranked = np.argsort(-model.vectors["trending"], kind="stable")[:20]
    ranked = np.tile(ranked, (len(truth.cold_start_items), 1))
    metrics = ranking_metrics(ranked, truth.cold_start_items)
    metrics["users"] = float(len(truth.cold_start_items))
    return metrics
