"""Tuning the hybrid's blend weights on the validation folds, never on the test weeks, so
that they carry over to customers and weeks the tuning never saw.

Each fold's component ranks are computed once, over the items the protocol allows. Then,
on the per-customer NDCG@10 of all folds pooled:

1. coordinate ascent from the best single component moves one weight at a time over the
   grid, keeping a change only if the mean improves;
2. components that do not pay their way are dropped: the one whose removal costs least goes,
   while the blend left is not clearly worse than the ascended one (the paired bootstrap
   interval of the loss includes zero). The loss is counted from the ascended blend, not
   from the previous drop: one drop at a time, each within noise, once took most of the
   validated gain away (the cumulative loss was never tested);
3. the weights are shrunk toward the best single component: of the mixes
   (1 - s) * best + s * tuned, the one whose gain over the best component has the highest
   lower confidence bound is kept; with no clear gain, that is the best component alone.

So the blend moves away from its strongest part only as far as the evidence carries it,
and it never loses on validation to any of its own components by more than noise (checked
at the end; if it did, the best component alone is served). Customers evaluated in several
folds count as one cluster in every bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference.recommender.rerank import gather, lookup
from inference.recommender.scoring import TIE_BREAK, HybridModel
from storewise.settings import BlendSettings, EvaluationSettings
from training.recommender.data import Truth
from training.recommender.evaluate import Protocol, effective_truth
from training.recommender.hybrid import blocked_rows
from training.recommender.uncertainty import Bootstrap, Interval

CUT = 10
DISCOUNTS = (1 / np.log2(np.arange(2, CUT + 2))).astype(np.float64)


@dataclass
class FoldScores:
    """One fold's component ranks, restricted to each user's candidates (the union of
    every component's top candidates and the most popular items): a weighted sum over
    these equals the full blend wherever the top 10 can come from, at a fraction of the size."""

    candidates: np.ndarray  # users x width item indices (padded with -1)
    values: dict[str, np.ndarray]  # component -> users x width rank scores
    blocked: np.ndarray  # users x width: excluded by the protocol, or padding
    relevant: np.ndarray  # users x width: the candidate was bought in the fold
    ideal: np.ndarray  # users: the best possible DCG@10 (from the size of the truth)
    tie_break: np.ndarray  # users x width
    customers: np.ndarray  # users: customer ids (one bootstrap cluster per customer)
    context: np.ndarray  # users x width x len(CONTEXT): what the reranker reads besides the ranks


def fold_scores(
    model: HybridModel, truth: Truth, protocol: Protocol, components: list[str], *, max_users: int, seed: int
) -> FoldScores:
    targets = effective_truth(truth, protocol)
    keep = np.flatnonzero([len(items) > 0 for items in targets])
    if len(keep) > max_users:
        keep = np.sort(np.random.default_rng(seed).choice(keep, max_users, replace=False))
    users = truth.user_index[keep]
    candidates, values = model.candidate_ranks(users, blocked_rows(protocol.excluded, users), components)
    safe = np.maximum(candidates, 0)
    user_targets = [targets[i] for i in keep]
    excluded = gather(protocol.excluded[users].astype(np.float32), safe) > 0
    relevant = _member(safe, user_targets) & (candidates >= 0)
    sizes = np.array([len(items) for items in user_targets])
    ideal = np.cumsum(DISCOUNTS)[np.minimum(sizes, CUT) - 1] if len(sizes) else np.zeros(0)
    popularity = model.vectors["popularity"] / max(float(model.vectors["popularity"].max()), 1.0)
    return FoldScores(
        candidates=candidates,
        values=values,
        blocked=(candidates < 0) | excluded,
        relevant=relevant,
        ideal=ideal,
        tie_break=(TIE_BREAK * popularity[safe]).astype(np.float32),
        customers=model.user_ids[users].astype(str),
        context=model.candidate_context(users, candidates),
    )


def _member(candidates: np.ndarray, targets: list[np.ndarray]) -> np.ndarray:
    """candidates[row, j] is among targets[row]."""
    stride = int(max(candidates.max(initial=0), max((t.max(initial=0) for t in targets), default=0))) + 1
    rows = np.repeat(np.arange(len(targets), dtype=np.int64), [len(t) for t in targets])
    codes = rows * stride + (np.concatenate(targets).astype(np.int64) if targets else np.zeros(0, np.int64))
    order = np.argsort(codes, kind="stable")
    return lookup(codes[order], np.ones(len(codes), np.float32), candidates, stride) > 0


@dataclass
class Validation:
    """All folds' candidates side by side (rows = one customer in one fold)."""

    folds: list[FoldScores]
    bootstrap: Bootstrap
    base: np.ndarray = field(init=False)  # the tie-break, padded
    values: dict[str, np.ndarray] = field(init=False)
    blocked: np.ndarray = field(init=False)
    relevant: np.ndarray = field(init=False)
    ideal: np.ndarray = field(init=False)
    _relevant_positions: tuple[np.ndarray, np.ndarray] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        width = max((fold.candidates.shape[1] for fold in self.folds), default=1)

        def stack(arrays: list[np.ndarray], fill: object) -> np.ndarray:
            padded = [
                np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill)  # type: ignore[call-overload]
                for a in arrays
            ]
            return np.vstack(padded) if padded else np.zeros((0, width))

        names = self.folds[0].values if self.folds else {}
        self.values = {name: stack([fold.values[name] for fold in self.folds], 0) for name in names}
        self.blocked = stack([fold.blocked for fold in self.folds], True).astype(bool)
        # blocked candidates at -inf in the base itself, so every blend built on it has them
        # there already (one pass over the array fewer in each of the tuning's evaluations)
        tie_break = stack([fold.tie_break for fold in self.folds], 0).astype(np.float32)
        self.base = np.where(self.blocked, np.float32(-np.inf), tie_break).astype(np.float32)
        self.relevant = stack([fold.relevant for fold in self.folds], False).astype(bool)
        self.ideal = np.concatenate([fold.ideal for fold in self.folds]) if self.folds else np.zeros(0)

    @property
    def users(self) -> int:
        return len(self.ideal)

    def ndcg(self, weights: dict[str, float]) -> np.ndarray:
        """Each row's NDCG@10 under a blend."""
        total = self.base.copy()
        for name, weight in weights.items():
            if weight:
                total += np.float32(weight) * self.values[name]
        return self.ndcg_of(total)

    def ndcg_of(self, total: np.ndarray) -> np.ndarray:
        """Each row's NDCG@10 for blended scores `total` (users x width: `base` plus weighted
        values, so blocked candidates are at -inf), equal scores ranked by candidate
        column. The tuning calls this hundreds of times, so it never orders a
        whole row: one partition of the values (not of their indices: about twice as fast)
        gives each row's ten best scores, and only the relevant candidates (a few a row,
        found once in `__post_init__`) are ranked against those ten."""
        if not self.users:
            return np.zeros(0)
        cut = min(CUT, total.shape[1])
        last = total.shape[1] - cut  # the ten best scores, descending (no negated copy of `total`)
        best = np.sort(np.partition(total, last, axis=1)[:, last:], axis=1)[:, ::-1]
        rows, columns = self._relevant_at
        value = total[rows, columns]
        reach = np.isfinite(value) & (value >= best[rows, cut - 1])
        rows, columns, value = rows[reach], columns[reach], value[reach]
        above = best[rows] > value[:, None]
        rank = above.sum(axis=1)
        # equal scores: the earlier column first (few: the tie-break separates most items)
        tied = np.flatnonzero(
            ((best[rows] == value[:, None]).sum(axis=1) > 1) | (value == best[rows, cut - 1])
        )
        if len(tied):
            earlier = np.arange(total.shape[1]) < columns[tied, None]
            rank[tied] += ((total[rows[tied]] == value[tied, None]) & earlier).sum(axis=1)
        hit = rank < cut
        dcg = np.bincount(rows[hit], weights=DISCOUNTS[rank[hit]], minlength=self.users)
        return dcg / self.ideal

    @property
    def _relevant_at(self) -> tuple[np.ndarray, np.ndarray]:
        if self._relevant_positions is None:
            rows, columns = np.nonzero(self.relevant)
            self._relevant_positions = (rows, columns)
        return self._relevant_positions


def pooled(folds: list[FoldScores], evaluation: EvaluationSettings) -> Validation:
    """`folds` side by side, with the bootstrap over their customers (one cluster each)."""
    bootstrap = Bootstrap(
        np.concatenate([fold.customers for fold in folds]),
        samples=evaluation.bootstrap_samples,
        confidence=evaluation.confidence,
        seed=evaluation.bootstrap_seed,
    )
    return Validation(folds, bootstrap)


@dataclass(frozen=True)
class TunedBlend:
    """A protocol's chosen weights and what the validation folds say about them."""

    weights: dict[str, float]
    value: float  # mean validation NDCG@10
    singles: dict[str, float]  # each component alone
    versus_components: dict[str, Interval]  # chosen minus each component alone
    shrinkage: float
    dropped: list[str]
    users: int


def tune(
    validation: Validation,
    components: list[str],
    grid: tuple[float, ...],
    passes: int,
    shrinkage: tuple[float, ...],
) -> TunedBlend:
    """The robust blend for one protocol (module docstring)."""
    singles = {name: validation.ndcg({name: 1.0}) for name in components}
    best_name = max(components, key=lambda name: (float(singles[name].mean()), -components.index(name)))
    ascended = ascend(validation, components, {best_name: 1.0}, grid, passes)
    kept, dropped = drop_unpaid(validation, ascended)
    if dropped:
        kept = ascend(validation, [name for name in components if name in kept], kept, grid, 1)
    weights, share = shrink(validation, {best_name: 1.0}, kept, shrinkage)
    chosen = validation.ndcg(weights)
    versus = {name: validation.bootstrap.interval(chosen - singles[name]) for name in components}
    if any(versus[name].clearly_below_zero for name in weights):  # never worse than its own part
        weights, share = {best_name: 1.0}, 0.0
        chosen = singles[best_name]
        versus = {name: validation.bootstrap.interval(chosen - singles[name]) for name in components}
    return TunedBlend(
        weights=weights,
        value=float(chosen.mean()) if len(chosen) else 0.0,
        singles={name: float(values.mean()) if len(values) else 0.0 for name, values in singles.items()},
        versus_components=versus,
        shrinkage=share,
        dropped=dropped,
        users=validation.users,
    )


def tune_protocol(
    folds: list[FoldScores], components: list[str], blend: BlendSettings, evaluation: EvaluationSettings
) -> TunedBlend:
    """One protocol's blend tuned on its `folds` pooled (a job for either process)."""
    return tune(pooled(folds, evaluation), components, blend.grid, blend.passes, blend.shrinkage)


def ascend(
    validation: Validation,
    components: list[str],
    start: dict[str, float],
    grid: tuple[float, ...],
    passes: int,
) -> dict[str, float]:
    """Coordinate ascent on the mean NDCG@10, one weight at a time over the grid."""
    weights = {name: start.get(name, 0.0) for name in components}
    total = validation.base + sum(
        (np.float32(w) * validation.values[n] for n, w in weights.items() if w),
        np.zeros_like(validation.base),
    )
    best = float(validation.ndcg_of(total).mean()) if validation.users else 0.0
    for _ in range(passes):
        improved = False
        for name in components:
            for value in grid:
                if value == weights[name] or not any({**weights, name: value}.values()):
                    continue
                trial = total + np.float32(value - weights[name]) * validation.values[name]
                score = float(validation.ndcg_of(trial).mean())
                if score > best + 1e-6:
                    best, total, weights[name], improved = score, trial, value, True
        if not improved:
            break
    return {name: weight for name, weight in weights.items() if weight}


def drop_unpaid(validation: Validation, weights: dict[str, float]) -> tuple[dict[str, float], list[str]]:
    """Remove, one at a time, the component whose removal costs least, while the blend left
    is not clearly worse than `weights` (every removal's cost counted together: each one
    alone can be within noise when their sum is not)."""
    start = validation.ndcg(weights)
    weights, dropped = dict(weights), []
    while len(weights) > 1:
        costs = {
            name: validation.bootstrap.interval(
                start - validation.ndcg({n: w for n, w in weights.items() if n != name})
            )
            for name in weights
        }
        cheapest = min(costs, key=lambda name: (costs[name].mean, name))
        if costs[cheapest].clearly_above_zero:
            break
        dropped.append(cheapest)
        del weights[cheapest]
    return weights, dropped


def shrink(
    validation: Validation, best: dict[str, float], tuned: dict[str, float], steps: tuple[float, ...]
) -> tuple[dict[str, float], float]:
    """The mix (1 - s) * best + s * tuned whose gain over `best` has the highest lower bound
    (s = 0, the best component alone, unless some mix is clearly better)."""
    if tuned == best:
        return best, 0.0
    base = validation.ndcg(best)
    scale = sum(tuned.values()) / max(sum(best.values()), 1e-12)  # mix on the same scale
    chosen, chosen_share, chosen_low = best, 0.0, 0.0
    for share in sorted(steps):
        if share <= 0:
            continue
        # `best`'s names, then `tuned`'s, in their order: a set's order changes with each
        # process's string hashes, and the blend's float32 sum in another order moves ties
        # (session 16 saw a fold's blend at 0.0841 or 0.0845 from run to run)
        mix = {
            name: (1 - share) * best.get(name, 0.0) * scale + share * tuned.get(name, 0.0)
            for name in dict.fromkeys([*best, *tuned])
        }
        mix = {name: round(weight, 4) for name, weight in mix.items() if weight > 0}
        gain = validation.bootstrap.interval(validation.ndcg(mix) - base)
        if gain.low > chosen_low:
            chosen, chosen_share, chosen_low = mix, share, gain.low
    return chosen, chosen_share
