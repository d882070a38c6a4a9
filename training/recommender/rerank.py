"""Fitting the learned reranker (`inference/recommender/rerank.py` says what it reads and
why) and deciding, per protocol, whether it replaces the linear blend.

The decision is made like the blend's own choices: on customers the candidate was not
fitted on, with the paired bootstrap. The validation folds are dealt into
`held_out_groups` groups (fold i into group i mod 2), and each group in turn is held out:
the blend is tuned (`blend.tune`, exactly as training tunes it) and the trees are fitted
on the other folds, and both are judged on the held-out folds' customers (two groups, not
one fold at a time: half the fits, which are most of the decision's time). The
per-customer differences of all folds are pooled (a customer in several folds is one bootstrap cluster).

How much evidence the trees need depends on the protocol (`adoption_rule`). Under all
purchases (and business rules) they replace the blend only if the interval of their gain
lies above zero: there one component (TIFU-KNN) carries most of the answer, and on the
online-retail data the trees' gain on the month after the folds went both ways (from
-0.020 to +0.022). Under discovery they replace it unjudged (`adopt_always`: its held-out
groups are not fitted, as the decision would not read them): every candidate is new to the
customer, which component to trust depends on the customer, and the trees beat the blend
on the following month in every run measured (+0.011 to +0.047: the sample, its halves,
the sample x 3, a wider four-copy stand-in, and two earlier months; "Session 22" in
benchmarks/README.md), while the held-out folds called two of those gains noise. In
"Session 28" they called the trees clearly worse on one of eight half-size customer sets
(-0.012), where the trees then won the following month by +0.041 (discovery there went
from behind trending to ahead of it). The held-out comparison leans against the trees: its
trees are fitted on half the folds, and the ones adopted are refitted on all of them, with
twice the rows, while the blend's few weights gain little from more folds. The trees
adopted are refitted on every fold; when the blend stays, the run says so.

Why a gate per protocol, not a switch (benchmarks/README.md, "Session 16"): held out on
the validation folds, the trees were clearly ahead of the blend under discovery on the
online-retail sample, on one of its halves and on the demo shop, level on the other half;
under all purchases clearly ahead on the demo shop and within noise, either way, on the
real data. Without the customer's context they lost that lead (the half where they were
level became a clear loss), which is why it is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from inference.recommender.rerank import Reranker, TreeEnsemble, scored_candidates
from storewise.settings import BlendSettings, EvaluationSettings, RerankSettings
from training.recommender.blend import FoldScores, Validation, pooled, tune
from training.recommender.uncertainty import Interval

log = logging.getLogger(__name__)
# fewer bought candidates than this in a training group: nothing to learn from (a tiny shop)
MIN_BOUGHT = 20


@dataclass(frozen=True)
class RerankChoice:
    """Whether a protocol's reranker replaces its blend, and the evidence."""

    adopted: bool
    reason: str
    # pooled over the held-out folds: the reranker's NDCG@10 minus the blend's
    gain: Interval | None = None
    # per held-out fold (latest first): (blend, reranker) mean NDCG@10
    folds: list[tuple[float, float]] = field(default_factory=list)

    def describe(self) -> str:
        return f"{'reranker' if self.adopted else 'blend'}: {self.reason}"


def candidate_rows(
    fold: FoldScores, components: list[str], min_rank_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fold's allowed candidates that the trees score (`Reranker.scored`) as rows of
    features (components' rank scores, then `CONTEXT`), whether each was bought, and the
    users x width mask of where they are."""
    scored = candidate_mask(fold, components, min_rank_score)
    ranks = np.stack([fold.values[name][scored] for name in components], axis=-1)
    features = np.concatenate([ranks, fold.context[scored]], axis=-1)
    return features.astype(np.float32), fold.relevant[scored], scored


def candidate_mask(fold: FoldScores, components: list[str], min_rank_score: float) -> np.ndarray:
    """Where the fold's allowed candidates that the trees score are (users x width)."""
    return scored_candidates(fold.values, components, fold.candidates, min_rank_score) & ~fold.blocked


def min_rank_score(settings: RerankSettings, rank_offset: float) -> float:
    """The rank score of a component's `top_per_component`-th item (`Reranker.min_rank_score`)."""
    return float(np.float32(1.0 / (settings.top_per_component - 1 + rank_offset)))


Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # `candidate_rows`: features, bought, where


def fit_trees(rows: list[Rows], settings: RerankSettings) -> Any:
    """A HistGradientBoostingClassifier fitted on the folds' candidate `rows`: every bought
    one and, above `max_rows`, a random share of the rest (a uniform share of the negatives
    moves every log-odds by the same constant: the order within a customer, all that
    ranking reads, is unchanged)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.concatenate([features for features, _, _ in rows])
    y = np.concatenate([bought for _, bought, _ in rows])
    negatives = int((~y).sum())
    share = min(1.0, max(settings.max_rows - int(y.sum()), 0) / max(negatives, 1))
    if share < 1.0:
        keep = y | (np.random.default_rng(settings.seed).random(len(y)) < share)
        x, y = x[keep], y[keep]
    model = HistGradientBoostingClassifier(
        max_iter=settings.iterations,
        learning_rate=settings.learning_rate,
        max_leaf_nodes=settings.leaves,
        max_depth=settings.max_depth,
        min_samples_leaf=settings.min_leaf,
        l2_regularization=settings.l2,
        max_bins=settings.bins,
        early_stopping=False,
        random_state=settings.seed,
    )
    with threadpool_limits(1, "openmp"):  # the other core runs the background jobs
        model.fit(x, y)
    model.storewise_rows = {"rows": len(y), "bought": int(y.sum()), "negative_share": round(share, 4)}
    return model


def export_trees(model: object) -> TreeEnsemble:
    """A fitted binary HistGradientBoostingClassifier's trees as `TreeEnsemble` arrays. Its
    predictors are not public API: `tests/inference/test_rerank.py` checks that the export
    predicts what `predict_proba` does, so a scikit-learn upgrade that changes them fails
    there, not in the service."""
    predictors = [trees[0] for trees in model._predictors]  # type: ignore[attr-defined]
    offsets = np.cumsum([0] + [len(tree.nodes) for tree in predictors])
    nodes = np.concatenate([tree.nodes for tree in predictors])
    leaf = nodes["is_leaf"].astype(bool)
    if np.isnan(nodes["num_threshold"][~leaf]).any() or nodes["is_categorical"].any():
        raise ValueError("the reranker's trees use missing values or categories, which the export does not")
    owner = np.repeat(offsets[:-1], np.diff(offsets))
    index = np.arange(len(nodes), dtype=np.int32)
    return TreeEnsemble(
        feature=np.where(leaf, 0, nodes["feature_idx"]).astype(np.int32),
        threshold=np.where(leaf, np.inf, nodes["num_threshold"]).astype(np.float64),
        left=np.where(leaf, index, nodes["left"] + owner).astype(np.int32),
        right=np.where(leaf, index, nodes["right"] + owner).astype(np.int32),
        value=np.where(leaf, nodes["value"], 0.0).astype(np.float64),
        roots=offsets[:-1].astype(np.int32),
        baseline=float(np.ravel(model._baseline_prediction)[0]),  # type: ignore[attr-defined]
        depth=int(nodes["depth"].max()),
    )


def reranked_ndcg(validation: Validation, fold: FoldScores, rows: Rows, model: Any) -> np.ndarray:
    """Each customer's NDCG@10 on `fold` (the one fold of `validation`, its candidate
    `rows`) with the fitted trees' probabilities (`fit_trees`; scikit-learn's own
    prediction, which the export matches) in place of the blend, ranked exactly as the
    blend is."""
    features, _, scored = rows
    probability = np.zeros(fold.candidates.shape, np.float32)
    if len(features):
        with threadpool_limits(1, "openmp"):
            probability[scored] = model.predict_proba(features)[:, 1]
    width = validation.base.shape[1]
    padded = np.pad(probability, ((0, 0), (0, width - int(fold.candidates.shape[1]))))
    return validation.ndcg_of(validation.base + padded)


@dataclass(frozen=True)
class HeldOut:
    """One held-out group's evidence (`held_out_group`): per held-out fold, each customer's
    NDCG@10 with the reranker minus with the blend, and both means."""

    differences: list[tuple[int, np.ndarray]]  # (fold index, per customer)
    means: list[tuple[int, float, float]]  # (fold index, blend, reranker)


def held_out_groups(folds: list[FoldScores], settings: RerankSettings) -> int:
    return min(settings.held_out_groups, len(folds))


def not_learnable(
    folds: list[FoldScores], components: list[str], blend: BlendSettings, settings: RerankSettings
) -> str | None:
    """Why no reranker is learned from these folds (switched off, too few folds or bought
    candidates), or None."""
    if not settings.enabled:
        return "the reranker is switched off (rerank.enabled)"
    if len(folds) < 2 or not all(len(fold.customers) for fold in folds):
        return "fewer than two validation folds with customers"
    floor = min_rank_score(settings, blend.rank_offset)
    groups = held_out_groups(folds, settings)
    bought = [int((fold.relevant & candidate_mask(fold, components, floor)).sum()) for fold in folds]
    fewest = min(
        sum(n for index, n in enumerate(bought) if index % groups != group) for group in range(groups)
    )
    if fewest < MIN_BOUGHT:
        return (
            f"too few bought candidates to learn from ({fewest} in a training group, fewer than {MIN_BOUGHT})"
        )
    return None


def held_out_group(
    folds: list[FoldScores],
    components: list[str],
    blend: BlendSettings,
    settings: RerankSettings,
    evaluation: EvaluationSettings,
    group: int,
) -> HeldOut:
    """Group `group` held out: the blend tuned (`blend.tune`, exactly as training tunes it)
    and the trees fitted on the other folds, both judged on the held-out folds' customers.
    Each group is independent of the others: the run hands them to both processes."""
    floor = min_rank_score(settings, blend.rank_offset)
    groups = held_out_groups(folds, settings)
    held_out = [index for index in range(len(folds)) if index % groups == group]
    others = [index for index in range(len(folds)) if index % groups != group]
    rows = {index: candidate_rows(folds[index], components, floor) for index in range(len(folds))}
    tuned = tune(
        pooled([folds[i] for i in others], evaluation),
        components,
        blend.grid,
        blend.passes,
        blend.shrinkage,
    )
    trees = fit_trees([rows[i] for i in others], settings)
    differences, means = [], []
    for index in held_out:
        judge = pooled([folds[index]], evaluation)
        linear = judge.ndcg(tuned.weights)
        reranked = reranked_ndcg(judge, folds[index], rows[index], trees)
        differences.append((index, reranked - linear))
        means.append((index, round(float(linear.mean()), 4), round(float(reranked.mean()), 4)))
    return HeldOut(differences, means)


CLEARLY_BETTER, NOT_CLEARLY_WORSE, ALWAYS = "clearly better", "not clearly worse", "always"


def adoption_rule(settings: RerankSettings, protocol: str) -> str:
    """What the trees' pooled held-out gain must be for `protocol`'s trees to replace its
    blend (module docstring): ALWAYS with the gate off or for `adopt_always`'s protocols,
    NOT_CLEARLY_WORSE for `adopt_unless_clearly_worse`'s, CLEARLY_BETTER for the others."""
    if not settings.gate or protocol in settings.adopt_always:
        return ALWAYS
    return NOT_CLEARLY_WORSE if protocol in settings.adopt_unless_clearly_worse else CLEARLY_BETTER


def unjudged(settings: RerankSettings) -> RerankChoice:
    """An ALWAYS protocol's decision: adopted, and its held-out groups not fitted (the
    decision does not read them; on the wide stand-in discovery's two took 8.3 s of CPU)."""
    because = "rerank.gate off" if not settings.gate else "rerank.adopt_always"
    return RerankChoice(True, f"always ({because}), not judged on held-out folds")


def first_group_verdict(
    folds: list[FoldScores], first: HeldOut, rule: str, evaluation: EvaluationSettings
) -> RerankChoice | None:
    """Under CLEARLY_BETTER with no lead on the first held-out group's customers, the blend
    stays without the other groups: the pooled gain could be clearly above zero only if
    theirs were large, and they are not worth their fits (most of the decision's time).
    Under the other rules every group is fitted: on half 0 of the online-retail sample a
    first group clearly behind (-0.026) pooled to noise (-0.007) with the second."""
    difference = np.concatenate([d for _, d in first.differences])
    if rule != CLEARLY_BETTER or float(difference.mean()) > 0:
        return None
    held_out = pooled([folds[index] for index, _ in first.differences], evaluation)
    interval = held_out.bootstrap.interval(difference)
    folds_seen = [(linear, reranked) for _, linear, reranked in first.means]
    reason = (
        f"no lead over the blend on the first held-out group, {interval.describe()} (the other not fitted)"
    )
    return RerankChoice(False, reason, interval, folds_seen)


def pooled_verdict(
    folds: list[FoldScores], groups: list[HeldOut], rule: str, evaluation: EvaluationSettings
) -> RerankChoice:
    """Every group's evidence pooled: the reranker is adopted if its gain passes `rule`
    (CLEARLY_BETTER or NOT_CLEARLY_WORSE; ALWAYS is decided unjudged, `unjudged`)."""
    # in the folds' order, as the bootstrap's clusters are
    differences = sorted((pair for held in groups for pair in held.differences), key=lambda pair: pair[0])
    per_fold = [
        (linear, reranked) for _, linear, reranked in sorted(m for held in groups for m in held.means)
    ]
    gain = pooled(folds, evaluation).bootstrap.interval(np.concatenate([d for _, d in differences]))
    if gain.clearly_above_zero:
        verdict = "clearly better than"
    elif gain.clearly_below_zero:
        verdict = "clearly worse than"
    else:
        verdict = "not clearly better than" if rule == CLEARLY_BETTER else "within noise of"
    adopted = gain.clearly_above_zero if rule == CLEARLY_BETTER else not gain.clearly_below_zero
    reason = f"{verdict} the blend on held-out folds, {gain.describe()}"
    if rule == NOT_CLEARLY_WORSE and adopted and not gain.clearly_above_zero:
        reason += " (adopted unless clearly worse: rerank.adopt_unless_clearly_worse)"
    return RerankChoice(adopted, reason, gain, per_fold)


def refit_reranker(
    folds: list[FoldScores], components: list[str], blend: BlendSettings, settings: RerankSettings
) -> Reranker:
    """The trees refitted on every fold, for the adopted reranker (`with_evidence`)."""
    floor = min_rank_score(settings, blend.rank_offset)
    model = fit_trees([candidate_rows(fold, components, floor) for fold in folds], settings)
    return Reranker(list(components), export_trees(model), dict(model.storewise_rows), floor)


def with_evidence(reranker: Reranker, choice: RerankChoice) -> Reranker:
    """The adopted reranker with its decision's evidence (the reason, if it was not judged)."""
    gain = choice.gain.describe() if choice.gain is not None else choice.reason
    reranker.info.update({"gain": gain, "held_out_folds": choice.folds, "features": reranker.feature_names})
    return reranker


def choose_reranker(
    folds: list[FoldScores],
    components: list[str],
    blend: BlendSettings,
    settings: RerankSettings,
    evaluation: EvaluationSettings,
    protocol: str,
) -> tuple[RerankChoice, Reranker | None]:
    """The reranker for one `protocol`'s folds (latest first) if its held-out gain over the
    blend passes the protocol's rule (`adoption_rule`), refitted on every fold; else None.
    The run spreads the same steps over both processes (`validation.rerank_all`)."""
    reason = not_learnable(folds, components, blend, settings)
    if reason is not None:
        return RerankChoice(False, reason), None
    rule = adoption_rule(settings, protocol)
    if rule == ALWAYS:
        choice = unjudged(settings)
        return choice, with_evidence(refit_reranker(folds, components, blend, settings), choice)
    groups: list[HeldOut] = []
    for group in range(held_out_groups(folds, settings)):
        groups.append(held_out_group(folds, components, blend, settings, evaluation, group))
        if group == 0 and (stop := first_group_verdict(folds, groups[0], rule, evaluation)) is not None:
            return stop, None
    choice = pooled_verdict(folds, groups, rule, evaluation)
    if not choice.adopted:
        return choice, None
    return choice, with_evidence(refit_reranker(folds, components, blend, settings), choice)
