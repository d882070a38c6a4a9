"""The validation folds and what is decided on them: LightFM's epochs, whether LightFM pays
its way in the blend, and every protocol's blend weights.

The folds are `validation_folds` windows of `validation_days` each, back to back, the latest
ending where the test weeks begin (the CLI's `--validation-days 30` makes four 30-day folds,
four months before the test month). A fold whose cutoff leaves less history before it than
one window is skipped: its customers would be judged on almost nothing.

LightFM is the one expensive component. With `lightfm.warm_start_epochs` above 0,
early stopping trains it from scratch on the earliest fold, and each later fold's LightFM
continues the one before for that many epochs on its longer history (the test weeks' and
the final fit continue the chain: `LightFmChoice.latest_fold_model`). With 0 (the
default: the warm chain lost discovery quality, config/recommender.yaml), early stopping
runs on the latest fold, and LightFM is fitted from scratch on the other folds only if it
clearly pays its way there: under some protocol, the blend tuned on that fold with every
component keeps LightFM and is clearly better than the blend tuned without it (the paired
bootstrap interval of the difference above zero; `lightfm_gains`), and still does on the
latest two folds pooled once the second fold's LightFM is in (`confirm_lightfm`; else its
other fits are dropped). Surviving that fold's
tuning alone was too weak a test: on the online-retail sample LightFM survived it in five
of six runs (three seeds, two shops) without ever being clearly better there, while the
blends tuned without it were never clearly worse on the test weeks and twice clearly
better (benchmarks/README.md, "Session 14"); and its four later fits are most of a run's
time. With warm starts every fold has it already and the tuning on all
folds decides. Every other component is fitted on every fold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tqdm import tqdm

from inference.recommender.rerank import Reranker
from inference.recommender.scoring import HybridModel
from storewise import columns as c
from storewise.errors import DataError
from storewise.settings import RecommenderSettings
from training.recommender.background import (
    NAMES,
    BackgroundJobs,
    BestEpoch,
    LaterFit,
    fit_components,
    fit_lightfm,
    fit_lightfm_following,
)
from training.recommender.blend import (
    FoldScores,
    TunedBlend,
    Validation,
    fold_scores,
    pooled,
    tune,
    tune_protocol,
)
from training.recommender.data import TrainData, Truth, build_truth
from training.recommender.evaluate import PROTOCOLS, Protocol
from training.recommender.hybrid import with_lightfm
from training.recommender.models import LightFmHybrid
from training.recommender.outcome import PRIMARY_METRIC
from training.recommender.relations import keep_name_similarity, name_similarity_entry
from training.recommender.rerank import (
    ALWAYS,
    HeldOut,
    RerankChoice,
    adoption_rule,
    first_group_verdict,
    held_out_group,
    held_out_groups,
    not_learnable,
    pooled_verdict,
    refit_reranker,
    unjudged,
    with_evidence,
)
from training.recommender.trainer import Trainer
from training.recommender.uncertainty import Interval, describe_gains

log = logging.getLogger(__name__)

Window = tuple[pd.Timestamp, pd.Timestamp]
MAX_TUNING_USERS = 1000  # per fold: the demo shop has tens of thousands of buyers a month


@dataclass
class Fold:
    window: Window
    data: TrainData
    truth: Truth
    protocols: dict[str, Protocol]


@dataclass
class LightFmChoice:
    """LightFM's settings for the run: epochs by early stopping, `--search` overrides; the
    early-stopped model of the latest fold (its best epoch) is that fold's LightFM."""

    epochs: int
    value: float
    curve: list[tuple[int, float]]
    overrides: dict[str, Any] = field(default_factory=dict)
    search_results: list[dict[str, Any]] = field(default_factory=list)
    latest_fold_model: LightFmHybrid | None = None
    # LightFM is in some protocol's blend (from scratch: it first had to pay its way on the
    # latest fold to be fitted on the others)
    blended: bool = True
    # with warm starts, every fold's LightFM (latest first), the chain's earlier links
    fold_models: list[LightFmHybrid] = field(default_factory=list)
    # from scratch: on the latest fold, each protocol's blend with LightFM minus the blend
    # without it (the protocols whose blend there keeps LightFM; `lightfm_gains`)
    screen: dict[str, Interval] = field(default_factory=dict)
    # from scratch, once the screen has kept it: the same on the latest two folds pooled
    # (`confirm_lightfm`; empty: no blend tuned on them keeps it); None if not asked
    confirmation: dict[str, Interval] | None = None

    def continued(
        self,
        trainer: Trainer,
        data: TrainData,
        previous: LightFmHybrid | None,
        fallbacks: tuple[LightFmHybrid, ...] = (),
    ) -> LightFmHybrid:
        """LightFM on `data` for a later model of the run: continuing `previous` (warm
        starts on; rows it lacks from the first of `fallbacks` that has them) or from
        scratch for the chosen epochs."""
        warm = trainer.settings.lightfm.warm_start_epochs
        if warm and previous is not None:
            return trainer.lightfm(warm, self.overrides).fit(data, start_from=previous, fallbacks=fallbacks)
        return self.from_scratch(trainer).fit(data)

    def from_scratch(self, trainer: Trainer) -> LightFmHybrid:
        """An unfitted LightFM with the run's settings and chosen epochs."""
        return trainer.lightfm(self.epochs, self.overrides)

    def schedule(self, trainer: Trainer, jobs: BackgroundJobs, later: dict[str, LaterFit]) -> None:
        """Submit every later from-scratch LightFM of the run to `jobs` that is not there
        already (following early stopping), in the order they are needed (`later`: key ->
        what to fit); with warm starts each continues the one
        before it, so they are fitted where they are needed instead."""
        if trainer.settings.lightfm.warm_start_epochs:
            return
        for key, fit in later.items():
            if key not in jobs:  # not already following early stopping (`follow_early_stopping`)
                jobs.submit(
                    key,
                    fit_lightfm,
                    self.from_scratch(trainer),
                    fit.data,
                    fit.top_items,
                    fit.users,
                    spare=fit.spare,
                    late=fit.late,
                )


def follow_early_stopping(
    trainer: Trainer, jobs: BackgroundJobs, later: dict[str, LaterFit], search: bool
) -> BestEpoch | None:
    """Submit `later`'s LightFMs to train in the other process alongside early stopping
    (`background.BestEpoch`), where they can: from scratch (no warm starts) with the
    configured settings (no `--search`, whose trials decide them first), with a second
    process. Early stopping must follow at once, told the returned `BestEpoch`."""
    settings = trainer.settings.lightfm
    if search or settings.warm_start_epochs or not jobs.background or not later:
        return None
    best = BestEpoch(jobs.scratch / "best_epoch")
    for key, fit in later.items():
        model = trainer.lightfm(settings.max_epochs)
        if fit.top_items:
            raise ValueError(f"{key}: a LightFM following early stopping computes no top items")
        jobs.submit(key, fit_lightfm_following, model, fit.data, best, spare=fit.spare, late=fit.late)
    return best


def fold_windows(test_cutoff: pd.Timestamp, days: int, count: int) -> list[Window]:
    """`count` windows of `days` each, ending where the test weeks begin (latest first)."""
    return [
        (test_cutoff - pd.Timedelta(days=(i + 1) * days), test_cutoff - pd.Timedelta(days=i * days))
        for i in range(count)
    ]


def usable_windows(trainer: Trainer, windows: list[Window]) -> list[Window]:
    """The windows with at least one window's length of history before them (the latest
    is always kept: without it nothing can be tuned, and the error below says why)."""
    first = trainer.orders[c.ORDERED_AT].min()
    return [w for i, w in enumerate(windows) if i == 0 or w[0] - (w[1] - w[0]) >= first]


def validation_folds(trainer: Trainer, windows: list[Window]) -> list[Fold]:
    folds = []
    for window in tqdm(windows, desc="validation data", unit="fold", leave=False):
        data = trainer.data_at(window[0])
        truth = build_truth(trainer.orders, trainer.customers, data, window)
        folds.append(Fold(window, data, truth, trainer.protocols(data)))
    if not len(folds[0].truth.user_index):
        start, end = windows[0]
        raise DataError(
            f"no customer with history bought anything in the validation weeks ({start:%Y-%m-%d} to "
            f"{end:%Y-%m-%d}); the shop needs more history, or shorter evaluation windows in "
            "config/recommender.yaml",
            path=trainer.shop.root,
        )
    return [fold for i, fold in enumerate(folds) if i == 0 or len(fold.truth.user_index)]


def folds_before(trainer: Trainer, test_cutoff: pd.Timestamp) -> list[Fold]:
    """The run's validation folds: `validation_folds` windows of `validation_days` ending at
    `test_cutoff`, each with enough history before it (see `usable_windows`)."""
    windows = trainer.settings.evaluation
    return validation_folds(
        trainer,
        usable_windows(trainer, fold_windows(test_cutoff, windows.validation_days, windows.validation_folds)),
    )


def choose_lightfm(
    trainer: Trainer, folds: list[Fold], search: bool, followed: BestEpoch | None = None
) -> LightFmChoice:
    """Epochs by early stopping (on the earliest fold with warm starts, each later fold's
    model continuing the one before; else on the latest); with `search`, the best trial's
    settings. `followed` is told early stopping's best epoch (not the search's trials')."""
    warm = trainer.settings.lightfm.warm_start_epochs > 0
    fold = folds[-1] if warm else folds[0]
    protocol = fold.protocols[trainer.settings.evaluation.primary_protocol]
    results: list[dict[str, Any]] = []
    overrides: dict[str, Any] = {}
    if search:
        for components in trainer.settings.search.components:
            for rate in trainer.settings.search.learning_rate:
                trial = {"components": components, "learning_rate": rate}
                epochs, value, _, _ = trainer.early_stopping(fold.data, fold.truth, protocol, trial)
                results.append({**trial, "epochs": epochs, f"validation_{PRIMARY_METRIC}": value})
        best = max(results, key=lambda row: row[f"validation_{PRIMARY_METRIC}"])
        overrides = {"components": best["components"], "learning_rate": best["learning_rate"]}
    epochs, value, curve, model = trainer.early_stopping(
        fold.data, fold.truth, protocol, overrides, followed.publish if followed else None
    )
    choice = LightFmChoice(epochs, value, curve, overrides, results, model)
    if warm:
        chain = [model]
        for later in tqdm(folds[-2::-1], desc="lightfm on later folds", unit="fold", leave=False):
            chain.append(choice.continued(trainer, later.data, chain[-1]))
        choice.fold_models = chain[::-1]
        choice.latest_fold_model = choice.fold_models[0]
    return choice


def components_key(index: int) -> str:
    return f"validation fold {index}'s components"


def submit_name_similarity(trainer: Trainer, jobs: BackgroundJobs, data: TrainData) -> None:
    """Queue the catalogue's name similarity first (`data` over the whole catalogue): every
    fold's and the final fit's hybrid read it, as jobs in either process. Computed in a fold's
    job instead, it was computed again here when this process took the next fold's job
    itself (3.3 s on the large demo shop); `take_name_similarity` keeps it here too."""
    if "names" in trainer.settings.blend.components:
        neighbours = trainer.settings.components.item_neighbours
        jobs.submit(NAMES, name_similarity_entry, data.item_features, data.item_feature_names, neighbours)


def take_name_similarity(jobs: BackgroundJobs) -> None:
    """`submit_name_similarity`'s result, kept in this process's cache: taken once early
    stopping is over (taken earlier, while the other process was still starting, this one
    ran the next queued job, the test weeks' peers, itself)."""
    if NAMES in jobs:
        keep_name_similarity(jobs.take(NAMES))


def submit_fold_components(trainer: Trainer, jobs: BackgroundJobs, folds: list[Fold]) -> None:
    """Queue every fold's hybrid without LightFM (`fit_components`): they depend on nothing
    validation decides, so the other process fits them while this one early-stops LightFM
    (on the sample x 3 it idled 5.6 s of the folds, this process fitting them). LightFM's
    representations are added where they are taken (`with_lightfm`)."""
    orders, codes = jobs.share(trainer.orders), jobs.share(trainer.prepared.codes)
    for index, fold in enumerate(folds):
        jobs.submit(
            components_key(index),
            fit_components,
            fold.data,
            orders,
            codes,
            trainer.settings,
            trainer.settings.blend.components,
            trainer.settings.evaluation.validation_days,
            fold.truth.user_index,
        )


def scores_on(
    model: HybridModel, fold: Fold, components: list[str], seed: int, same_as: dict[str, str] | None = None
) -> dict[str, FoldScores]:
    """Each protocol's candidates and component ranks on the fold; a protocol whose
    exclusions are another's (`same_as`, see `shared_masks`) shares that one's scores."""
    scores: dict[str, FoldScores] = {}
    for protocol in PROTOCOLS:
        if same_as and protocol in same_as:
            scores[protocol] = scores[same_as[protocol]]
            continue
        scores[protocol] = fold_scores(
            model, fold.truth, fold.protocols[protocol], components, max_users=MAX_TUNING_USERS, seed=seed
        )
    return scores


def shared_masks(folds: list[Fold]) -> dict[str, str]:
    """Protocols whose exclusions are the same on every fold share one tuning (on a shop with
    no one-time categories the business rules exclude nothing, like all purchases)."""
    same: dict[str, str] = {}
    for protocol in PROTOCOLS:
        for earlier in PROTOCOLS[: PROTOCOLS.index(protocol)]:
            if same.get(earlier, earlier) == earlier and all(
                (fold.protocols[protocol].excluded != fold.protocols[earlier].excluded).nnz == 0
                for fold in folds
            ):
                same[protocol] = earlier
                break
    return same


def validations(
    trainer: Trainer, scores: list[dict[str, FoldScores]], same_as: dict[str, str]
) -> dict[str, Validation]:
    """Each protocol's folds side by side, with the bootstrap over their customers (a
    protocol in `same_as` shares another's: it has none of its own)."""
    return {
        protocol: pooled([fold[protocol] for fold in scores], trainer.settings.evaluation)
        for protocol in PROTOCOLS
        if protocol not in same_as
    }


def tune_all(
    trainer: Trainer,
    scores: list[dict[str, FoldScores]],
    components: list[str],
    same_as: dict[str, str],
    jobs: BackgroundJobs | None = None,
) -> dict[str, TunedBlend]:
    """Every protocol's blend tuned on all folds (`blend.tune`)."""
    jobs = jobs if jobs is not None else BackgroundJobs(background=False)
    submit_tuning(trainer.settings, scores, components, same_as, jobs)
    return take_tuning(jobs, same_as)


def submit_tuning(
    settings: RecommenderSettings,
    scores: list[dict[str, FoldScores]],
    components: list[str],
    same_as: dict[str, str],
    jobs: BackgroundJobs,
) -> None:
    """Each protocol's tuning as a job (`take_tuning`): they are independent, 10.5 s of the
    large demo shop's run in this process alone."""
    for protocol in PROTOCOLS:
        if protocol not in same_as:
            folds = [fold[protocol] for fold in scores]
            jobs.submit(
                tune_key(protocol), tune_protocol, folds, components, settings.blend, settings.evaluation
            )


def take_tuning(jobs: BackgroundJobs, same_as: dict[str, str]) -> dict[str, TunedBlend]:
    tuned = {protocol: jobs.take(tune_key(protocol)) for protocol in PROTOCOLS if protocol not in same_as}
    return {protocol: tuned[same_as.get(protocol, protocol)] for protocol in PROTOCOLS}


def tune_key(protocol: str) -> str:
    return f"blend for {protocol}"


@dataclass
class PendingRerank:
    """`submit_rerankers`' work in flight: the folds of the protocols whose first held-out
    group is queued, the protocols whose trees are adopted unjudged (their refit queued:
    `rerank.unjudged`), and the decisions already made (a reranker that cannot be learned)."""

    folds: dict[str, list[FoldScores]]
    decided: dict[str, tuple[RerankChoice, Reranker | None]]
    unjudged: list[str] = field(default_factory=list)


def submit_rerankers(
    settings: RecommenderSettings,
    scores: list[dict[str, FoldScores]],
    components: list[str],
    same_as: dict[str, str],
    jobs: BackgroundJobs,
) -> PendingRerank:
    """Queue each protocol's first held-out group for its reranker decision (`rerank_all`),
    or its refit if the trees answer it unjudged."""
    pending = PendingRerank({}, {})
    for protocol in PROTOCOLS:
        if same_as.get(protocol, protocol) != protocol:
            continue
        folds = [fold[protocol] for fold in scores]
        reason = not_learnable(folds, components, settings.blend, settings.rerank)
        if reason is not None:
            pending.decided[protocol] = (RerankChoice(False, reason), None)
            continue
        if adoption_rule(settings.rerank, protocol) == ALWAYS:
            pending.unjudged.append(protocol)
            refit = (folds, components, settings.blend, settings.rerank)
            jobs.submit(rerank_key(protocol, "refit"), refit_reranker, *refit)
            continue
        pending.folds[protocol] = folds
        arguments = (folds, components, settings.blend, settings.rerank, settings.evaluation, 0)
        jobs.submit(rerank_key(protocol, 0), held_out_group, *arguments)
    return pending


def rerank_all(
    settings: RecommenderSettings,
    scores: list[dict[str, FoldScores]],
    components: list[str],
    same_as: dict[str, str],
    jobs: BackgroundJobs,
    pending: PendingRerank | None = None,
) -> tuple[dict[str, RerankChoice], dict[str, Reranker]]:
    """Each protocol's reranker decision (`training/recommender/rerank.py`, as
    `choose_reranker` makes it) and the adopted rerankers; protocols in `same_as` share
    another's. Its steps are jobs for both processes: every protocol's first held-out group
    at once (`pending`, if `submit_rerankers` queued them already); for a protocol with a
    lead there, its other groups and then its refit on every fold (dropped if the reranker
    is not adopted). One job per protocol left this process waiting for the other's: 9 of
    the sample x 3's 14.5 s decision. A protocol whose trees answer unjudged
    (`rerank.unjudged`) has its refit queued with the first groups, and nothing else."""
    if pending is None:
        pending = submit_rerankers(settings, scores, components, same_as, jobs)
    decided = {**pending.decided, **_rerank_jobs(settings, pending.folds, components, jobs)}
    for protocol in pending.unjudged:
        choice = unjudged(settings.rerank)
        decided[protocol] = (choice, with_evidence(jobs.take(rerank_key(protocol, "refit")), choice))
    for protocol, (choice, _) in decided.items():
        log.info("%s: %s", protocol, choice.describe())
    choices = {protocol: decided[same_as.get(protocol, protocol)][0] for protocol in PROTOCOLS}
    rerankers = {
        protocol: reranker
        for protocol in PROTOCOLS
        if (reranker := decided[same_as.get(protocol, protocol)][1]) is not None
    }
    return choices, rerankers


def _rerank_jobs(
    settings: RecommenderSettings,
    folds: dict[str, list[FoldScores]],
    components: list[str],
    jobs: BackgroundJobs,
) -> dict[str, tuple[RerankChoice, Reranker | None]]:
    """`rerank_all`'s decisions for the protocols whose folds can teach a reranker."""
    blend, rerank, evaluation = settings.blend, settings.rerank, settings.evaluation
    decided: dict[str, tuple[RerankChoice, Reranker | None]] = {}
    firsts: dict[str, HeldOut] = {}
    bar = tqdm(total=len(folds), desc="reranker", unit="protocol", leave=False)
    for protocol in folds:
        firsts[protocol] = jobs.take(rerank_key(protocol, 0))
        stop = first_group_verdict(
            folds[protocol], firsts[protocol], adoption_rule(rerank, protocol), evaluation
        )
        if stop is not None:
            decided[protocol] = (stop, None)
            bar.update(1)
            continue
        # the other groups (needed for the decision) before the refit (needed only if
        # adopted): waiting for the next protocol's first group, this process runs the first
        # queued job, so it fits a group while the other process ends its job and then takes
        # the refit. Queued refit first, the wide stand-in's run did the refit here and then
        # waited 4.2 s for the group that the other process had started last
        for group in range(1, held_out_groups(folds[protocol], rerank)):
            arguments = (folds[protocol], components, blend, rerank, evaluation, group)
            jobs.submit(rerank_key(protocol, group), held_out_group, *arguments)
        jobs.submit(rerank_key(protocol, "refit"), refit_reranker, folds[protocol], components, blend, rerank)
    for protocol in folds:
        if protocol in decided:
            continue
        later = range(1, held_out_groups(folds[protocol], rerank))
        groups = [firsts[protocol], *(jobs.take(rerank_key(protocol, group)) for group in later)]
        choice = pooled_verdict(folds[protocol], groups, adoption_rule(rerank, protocol), evaluation)
        if choice.adopted:
            decided[protocol] = (choice, with_evidence(jobs.take(rerank_key(protocol, "refit")), choice))
        else:
            jobs.drop(rerank_key(protocol, "refit"))
            decided[protocol] = (choice, None)
        bar.update(1)
    bar.close()
    return decided


def rerank_key(protocol: str, step: int | str) -> str:
    return f"reranker for {protocol}, {'held-out group ' if isinstance(step, int) else ''}{step}"


def lightfm_gains(
    trainer: Trainer, scores: list[dict[str, FoldScores]], components: list[str], same_as: dict[str, str]
) -> dict[str, Interval]:
    """For every protocol whose blend tuned on `scores` keeps LightFM: that blend minus the
    blend tuned without LightFM, per customer, with its paired bootstrap interval (the
    protocols in `same_as` share another's)."""
    blend = trainer.settings.blend
    without = [name for name in components if name != "lightfm"]
    gains: dict[str, Interval] = {}
    for protocol, validation in validations(trainer, scores, same_as).items():
        kept = tune(validation, components, blend.grid, blend.passes, blend.shrinkage)
        if "lightfm" not in kept.weights:
            continue
        alternative = tune(validation, without, blend.grid, blend.passes, blend.shrinkage)
        gains[protocol] = validation.bootstrap.interval(
            validation.ndcg(kept.weights) - validation.ndcg(alternative.weights)
        )
    return gains


def leave_out_lightfm(components: list[str], scores: list[dict[str, FoldScores]]) -> None:
    """LightFM out of the run's blends: out of `components` and of the folds' `scores`."""
    components.remove("lightfm")
    for fold in scores:
        for protocol in fold.values():
            protocol.values.pop("lightfm", None)  # protocols may share one FoldScores


def confirm_lightfm(
    trainer: Trainer,
    choice: LightFmChoice,
    scores: list[dict[str, FoldScores]],
    components: list[str],
    same_as: dict[str, str],
    jobs: BackgroundJobs,
    rest: dict[str, LaterFit],
) -> None:
    """The screen again on the latest two folds pooled (`scores`; `same_as`: the protocols
    sharing another's masks on them), once the second fold's LightFM is in: LightFM stays
    in the run's blends, and its `rest` of fits (the other folds', the test weeks') is
    queued, only if it still clearly pays its way under some protocol; else it leaves them
    and those fits are never queued. One fold's blend gain let LightFM through on a
    400,000-line stand-in (discovery +0.0124 [+0.0080, +0.0168]) where the two latest folds
    pooled gave +0.0005 [-0.0037, +0.0044], the tuning on all four folds then left it out of
    every blend, and the month after gained nothing from it (-0.0021 [-0.0055, +0.0013]
    without it): its four later fits were 40 s of a 100 s run (benchmarks/README.md,
    "Session 22")."""
    choice.confirmation, choice.blended = screen_lightfm(
        trainer, scores, components, same_as, "the latest two folds"
    )
    if choice.blended:
        choice.schedule(trainer, jobs, rest)


def screen_lightfm(
    trainer: Trainer,
    scores: list[dict[str, FoldScores]],
    components: list[str],
    same_as: dict[str, str],
    where: str,
) -> tuple[dict[str, Interval], bool]:
    """`lightfm_gains` on `scores` (the folds `where` names) and whether one is clearly above
    zero: if none is, LightFM leaves `components` and `scores` (`leave_out_lightfm`)."""
    gains = lightfm_gains(trainer, scores, components, same_as)
    blended = any(gain.clearly_above_zero for gain in gains.values())
    log.info(
        "LightFM on %s, its blend minus the blend without it: %s; %s",
        where,
        describe_gains(gains) or "no blend keeps it",
        "fitted on the other folds" if blended else "left out of the run's blends",
    )
    if not blended:
        leave_out_lightfm(components, scores)
    return gains, blended


def fold_key(index: int) -> str:
    return f"validation fold {index}"


def validate(
    trainer: Trainer,
    folds: list[Fold],
    search: bool,
    step: Callable[[str], None],
    jobs: BackgroundJobs | None = None,
    later: dict[str, LaterFit] | None = None,
    if_blended: dict[str, LaterFit] | None = None,
) -> tuple[LightFmChoice, list[dict[str, FoldScores]], list[str]]:
    """LightFM's epochs and place in the blend, and every fold's component ranks for the
    blend tuning (`tune_all`). Every fold's hybrid without LightFM is a job
    (`submit_fold_components`), and every later from-scratch LightFM is submitted to `jobs`
    (inline without; key -> what to fit): `later`'s before early stopping starts, to train
    behind the folds' hybrids, never past early stopping's best epoch so far
    (`follow_early_stopping`; else once it has chosen the epochs: the final fit's LightFM is
    needed whatever the blends), and once the latest fold's screen has
    decided that LightFM clearly pays its way there, the other folds' and `if_blended`'s
    (dropped if the latest two folds pooled do not confirm it, `confirm_lightfm`; the
    caller drops them if no blend keeps LightFM after all)."""
    jobs = jobs if jobs is not None else BackgroundJobs(background=False)
    components: list[str] = list(trainer.settings.blend.components)
    submit_fold_components(trainer, jobs, folds)
    choice = None
    if "lightfm" in components:
        followed = follow_early_stopping(trainer, jobs, later or {}, search)
        choice = choose_lightfm(trainer, folds, search, followed)
        choice.schedule(trainer, jobs, later or {})
    step("lightfm epochs")
    take_name_similarity(jobs)
    latest: HybridModel = jobs.take(components_key(0))
    if choice is not None and choice.latest_fold_model is not None:
        with_lightfm(latest, choice.latest_fold_model, folds[0].data)
    # what the shop allows (EASE is left out of a catalogue above components.max_ease_items)
    components = [name for name in components if name in latest.available]
    same_as = shared_masks(folds)
    scores = [scores_on(latest, folds[0], components, seed=0, same_as=same_as)]
    screening = choice is not None and not choice.fold_models and trainer.settings.lightfm.screen
    if choice is not None and screening:
        # LightFM trained from scratch on every fold is most of the run's time: on the
        # other folds only if it pays its way on the latest (with warm starts every fold
        # has it already, and the tuning on all folds decides; so it does without the screen)
        choice.screen, choice.blended = screen_lightfm(
            trainer, scores, components, shared_masks(folds[:1]), "the latest fold"
        )
    later_lightfm = {
        **{fold_key(index): LaterFit(fold.data) for index, fold in enumerate(folds[1:], start=1)},
        **(if_blended or {}),
    }
    confirming = False
    if choice is not None and choice.blended:
        # submitted once the screen has decided: a fold's LightFM handed to the other process
        # before it runs on when the screen then drops it, holding up the final fit's (on the
        # sample x 3, where LightFM no longer pays its way, submitting after the screen took
        # the run from 54-56 s to 50-51 s). They queue behind the final fit's (which follows
        # early stopping when it can); this process fits them itself while the other is
        # busy (`BackgroundJobs.take`). Open question: in f55592b the folds queued
        # behind the final fit made x 3's run 99-100 s instead of 87-92 s when LightFM paid
        # its way; with this order the large demo shop, where it does, measured 0.85x the
        # time before, but with the one-thread rule alone worth about that much
        # (benchmarks/README.md, "Session 17"), this order on its own is not measured there
        # the second fold's first: the others once the latest two folds confirm the screen
        # (`confirm_lightfm`); queued with it, the third fold's started over there before
        # the confirmation could drop it (15 s of the wide stand-in's other process)
        confirming = screening and len(folds) > 1
        first = dict(list(later_lightfm.items())[:1]) if confirming else later_lightfm
        choice.schedule(trainer, jobs, first)
    for index, fold in enumerate(tqdm(folds[1:], desc="validation folds", unit="fold", leave=False), start=1):
        # every other component first: the fold's LightFM may still be fitting elsewhere
        model: HybridModel = jobs.take(components_key(index))
        if choice is not None and choice.blended:
            lightfm = choice.fold_models[index] if choice.fold_models else jobs.take(fold_key(index))
            with_lightfm(model, lightfm, fold.data)
        scores.append(scores_on(model, fold, components, seed=index, same_as=same_as))
        if index == 1 and confirming and choice is not None:
            rest = {key: fit for key, fit in later_lightfm.items() if key not in first}
            confirm_lightfm(trainer, choice, scores, components, shared_masks(folds[:2]), jobs, rest)
    if choice is None:
        choice = LightFmChoice(trainer.settings.lightfm.max_epochs, 0.0, [], blended=False)
    return choice, scores, components
