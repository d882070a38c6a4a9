"""`storewise train recommender`: tune on validation weeks, compare on the test weeks,
refit on everything, log to MLflow and register.

1. Validation folds end where the test weeks begin (`validation.py`). On the latest, LightFM
   trains epoch by epoch until validation NDCG@10 stops improving (the learning curve is
   logged), and is kept in the blend only if it pays its way there; with `--search`, a few
   LightFM settings are tried the same way, each a child run.
2. On every fold the hybrid's components are fitted and ranked, and the blend weights are
   tuned per protocol on all folds together, robustly (`blend.py`); a learned reranker
   replaces a protocol's blend where held-out folds allow (`rerank.py`: under discovery
   unless clearly worse, elsewhere only if clearly better).
3. On the test weeks the hybrid, the baselines and the peers are fitted on the same data
   and evaluated under the same masks, each difference to the hybrid with its paired
   bootstrap interval (`comparison.py`); LightFM alone too when some blend uses it (or
   warm starts chain through the test weeks' model). Where the tuned hybrid is clearly
   behind a peer that one of its components ranks as, that component alone answers the
   protocol if it is clearly ahead there (`fallback.py`). A LightFM that no blend uses is not
   fitted on the test weeks: it is the run's most expensive model (about 10 s of the
   sample x 3's 77 s) and would only add a row to the table.
4. The hybrid is refitted on all the data and logged as a pyfunc with its bundle, then
   registered as `storewise-recommender` (promotion is a separate, gated step): by a
   process of its own, which imports MLflow and opens the store while the model trains
   (`training/tracking_process.py`).

The independent pieces of 1 to 4 are jobs that both processes take (`background.py`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from inference.recommender.rerank import Reranker
from inference.recommender.scoring import HybridModel
from storewise.config import CONFIG_DIR
from storewise.shop import ShopPaths
from training.recommender.background import (
    FINAL_FIT,
    FINAL_HYBRID,
    FINAL_TOP,
    GROUP_POPULARITY,
    TEST_WEEKS,
    BackgroundJobs,
    LaterFit,
    fit_components,
    submit_top_items,
    take_top_items,
)
from training.recommender.blend import FoldScores, TunedBlend
from training.recommender.bundle import shared_group_popularity, write_model_bundle
from training.recommender.comparison import Comparison, submit_peers, test_comparison, used_components
from training.recommender.data import TrainData, build_truth, split_cutoffs
from training.recommender.hybrid import with_lightfm
from training.recommender.models import LightFmHybrid
from training.recommender.outcome import TrainOutcome
from training.recommender.rerank import RerankChoice
from training.recommender.run_record import LoggedRun, run_record
from training.recommender.trainer import Trainer
from training.recommender.validation import (
    Fold,
    LightFmChoice,
    folds_before,
    rerank_all,
    shared_masks,
    submit_name_similarity,
    submit_rerankers,
    submit_tuning,
    take_tuning,
    validate,
)
from training.tracking_process import TrackingProcess, recommender_tracking

STEPS = ("validation data", "lightfm epochs", "validation folds", "blend", "test comparison", "final fit")


def submit_final_components(
    trainer: Trainer,
    jobs: BackgroundJobs,
    data: TrainData,
    blends: dict[str, dict[str, float]],
    rerankers: dict[str, Reranker],
) -> None:
    """Queue the final fit's hybrid (every component but LightFM, on all the data `data`)
    once the blends are decided: it depends on nothing the test comparison finds, so the
    other process fits it while this one fits the test weeks' hybrid (the sample x 3's
    final fit was 3.1 s here with the other process idle)."""
    components = used_components(blends, rerankers) | {"ease"}
    shared = jobs.share(trainer.orders), jobs.share(trainer.prepared.codes)
    jobs.submit(FINAL_HYBRID, fit_components, data, *shared, trainer.settings, components)


@dataclass(frozen=True)
class FinalLightfm:
    """The final fit's LightFM, fitted as a job, and the jobs computing its top items."""

    model: LightFmHybrid
    keys: list[str]


def submit_final_top(jobs: BackgroundJobs, candidates: int, wait: bool) -> FinalLightfm | None:
    """Take the final fit's LightFM if it is a job (fitted, or without `wait` None) and queue
    every customer's `candidates` best items by it (`submit_top_items`). Computed in the
    job that fitted it, they held the other process for 11.6 s of the large demo shop's
    folds while this one fitted the folds' LightFMs itself. Tried without waiting as the
    blend step starts and once it has ended (the other process fills the gaps between the
    later jobs with them); else in the final fit, waiting for that LightFM, and both
    processes compute them there."""
    if FINAL_FIT not in jobs or not (wait or jobs.finished(FINAL_FIT)):
        return None
    model = jobs.take(FINAL_FIT)
    return FinalLightfm(model, submit_top_items(jobs, FINAL_TOP, model, candidates))


def final_fit(
    trainer: Trainer,
    end: pd.Timestamp,
    choice: LightFmChoice,
    blends: dict[str, dict[str, float]],
    test_lightfm: LightFmHybrid | None,
    jobs: BackgroundJobs,
    data: TrainData,
    rerankers: dict[str, Reranker],
    fitted: FinalLightfm | None,
) -> HybridModel:
    """The hybrid refitted on all the data (`data`, the data at `end`): the model that is
    registered. LightFM is always fitted (similar items, audiences and new items read it;
    `fitted`, or the job that fitted it taken here, with its top items; else continuing the
    test weeks' `test_lightfm` with warm starts), the other components only if a blend uses
    them (EASE too, for the reasons and similar items, when the catalogue allows), taken
    from `jobs` (`submit_final_components`)."""
    fitted = fitted or submit_final_top(jobs, trainer.settings.blend.candidates, wait=True)
    final = jobs.take(FINAL_HYBRID)
    # continuing the test weeks' LightFM: the items launched in them from the latest fold's
    # (on the whole catalogue), which the test weeks' model does not have
    fallbacks = (choice.latest_fold_model,) if choice.latest_fold_model is not None else ()
    lightfm = (
        take_top_items(jobs, fitted.keys, fitted.model)
        if fitted is not None
        else choice.continued(trainer, data, test_lightfm, fallbacks)
    )
    with_lightfm(final, lightfm, data)
    final.blends, final.rerankers = blends, rerankers
    final.precompute_lightfm_top(lightfm.top_items)
    final.info = {
        "data_hash": trainer.data_hash,
        "trained_until": str(end),
        "lightfm_epochs": lightfm.epochs_before + lightfm.epochs_trained,
        "lightfm_seed": trainer.settings.lightfm.seed,
        "lightfm_blended": choice.blended,
    }
    return final


def decide_blends(
    trainer: Trainer,
    folds: list[Fold],
    scores: list[dict[str, FoldScores]],
    components: list[str],
    jobs: BackgroundJobs,
) -> tuple[dict[str, TunedBlend], dict[str, RerankChoice], dict[str, Reranker]]:
    """Each protocol's blend and reranker decision. The protocols' tunings and the
    rerankers' first held-out groups are independent jobs, queued together: both processes
    take them."""
    same_as = shared_masks(folds)
    submit_tuning(trainer.settings, scores, components, same_as, jobs)
    pending = submit_rerankers(trainer.settings, scores, components, same_as, jobs)
    tuned = take_tuning(jobs, same_as)
    return (tuned, *rerank_all(trainer.settings, scores, components, same_as, jobs, pending))


def answers_after(
    comparison: Comparison, choice: LightFmChoice
) -> tuple[dict[str, dict[str, float]], dict[str, Reranker]]:
    """The blends and rerankers the final model answers with: the tuned ones, but where the
    test weeks gave a protocol to one component alone (`comparison.fallbacks`), that one;
    `choice.blended` follows (whether some protocol still reads LightFM)."""
    choice.blended = "lightfm" in used_components(comparison.blends, comparison.rerankers)
    return comparison.blends, comparison.rerankers


def step_timer(trainer: Trainer, bar: tqdm, tracking: TrackingProcess | None) -> Callable[[str], None]:
    """Records each step's seconds (since the previous step ended) and moves the progress bar;
    stops the run at a step's end if the tracking store it would be written to failed to open."""
    last = [time.perf_counter()]

    def step(name: str) -> None:
        if tracking is not None:
            tracking.check()
        now = time.perf_counter()
        trainer.seconds[name] = round(now - last[0], 2)
        last[0] = now
        bar.set_postfix_str(f"done: {name}")
        bar.update(1)

    return step


def submit_group_popularity(trainer: Trainer, jobs: BackgroundJobs) -> None:
    """Queue the bundle's popularity by region and segment (all the data: it depends on
    nothing the run decides) as a spare job, which the other process takes while it idles
    at the start."""
    jobs.submit(
        GROUP_POPULARITY,
        shared_group_popularity,
        jobs.share(trainer.orders),
        trainer.customer_features,
        spare=True,
    )


def write_bundle(outcome: TrainOutcome, trainer: Trainer, final: HybridModel, groups: pd.DataFrame) -> Path:
    """The final model's bundle, in a folder of the run's own (returned) that lives as long
    as the outcome (callers read the bundle): deleted with it or at exit."""
    workdir = Path(tempfile.mkdtemp(prefix="storewise-recommender-"))
    weakref.finalize(outcome, shutil.rmtree, workdir, ignore_errors=True)
    outcome.bundle = write_model_bundle(workdir / "bundle", trainer, final, groups)
    return workdir


def train_recommender(
    shop: ShopPaths,
    *,
    config_dir: Path = CONFIG_DIR,
    search: bool = False,
    register: bool = True,
    evaluation: dict[str, Any] | None = None,
    tracking: TrackingProcess | None = None,
) -> TrainOutcome:
    """`evaluation` overrides keys of the evaluation settings (test_days, ...). With
    `register`, the run is written by `tracking` (`recommender_tracking`, started here
    unless the caller started it earlier: the CLI does, before importing this module)."""
    started = time.perf_counter()
    with ExitStack() as stack:
        if not register:
            tracking = None
        elif tracking is None:
            tracking = stack.enter_context(recommender_tracking(config_dir))
        trainer = Trainer(shop, config_dir, evaluation)
        if tracking is not None:
            tracking.open()  # the shop's data is read: the run will be written
        return _train(trainer, search, started, tracking)


def _train(trainer: Trainer, search: bool, started: float, tracking: TrackingProcess | None) -> TrainOutcome:
    windows = trainer.settings.evaluation
    test_cutoff, end = split_cutoffs(trainer.orders, windows.test_days, windows.validation_days)["test"]
    bar = tqdm(total=len(STEPS), desc="training recommender", unit="step")
    step = step_timer(trainer, bar, tracking)
    candidates = trainer.settings.blend.candidates
    with BackgroundJobs(background=trainer.settings.lightfm.background) as jobs:
        submit_group_popularity(trainer, jobs)
        final_data = trainer.data_at(end)
        submit_name_similarity(trainer, jobs, final_data)
        # the test weeks over the catalogue as it was at their start: what the shop would have got
        test_data = trainer.data_at(test_cutoff, listed_only=True)
        test_truth = build_truth(trainer.orders, trainer.customers, test_data, (test_cutoff, end))
        if jobs.background:
            # the test weeks' peers depend on nothing validation decides: first in the queue,
            # fitted over there while this process builds the folds (inline they run in the
            # test comparison, reusing the hybrid's EASE and timing)
            submit_peers(trainer, jobs, test_data, test_truth)
        folds = folds_before(trainer, test_cutoff)
        step("validation data")
        choice, scores, components = validate(
            trainer,
            folds,
            search,
            step,
            jobs,
            # its top items are jobs of their own, queued late (`submit_final_top`); needed
            # at the end, never fitted here while waiting for another result (`LaterFit`)
            {FINAL_FIT: LaterFit(final_data, late=True)},
            # the test comparison's hybrid scores the test customers only
            {TEST_WEEKS: LaterFit(test_data, candidates, test_truth.user_index, spare=True)},
        )
        step("validation folds")
        final_lightfm = submit_final_top(jobs, candidates, wait=False)
        tuned, rerank_choices, rerankers = decide_blends(trainer, folds, scores, components, jobs)
        blends = {protocol: blend.weights for protocol, blend in tuned.items()}
        choice.blended = "lightfm" in used_components(blends, rerankers)
        if not choice.blended:
            # the test weeks' LightFM only for a blend that uses it (module docstring, step 3)
            jobs.drop(TEST_WEEKS)
        submit_final_components(trainer, jobs, final_data, blends, rerankers)
        final_lightfm = final_lightfm or submit_final_top(jobs, candidates, wait=False)
        step("blend")
        comparison = test_comparison(trainer, choice, blends, jobs, test_data, test_truth, rerankers)
        blends, rerankers = answers_after(comparison, choice)
        step("test comparison")
        final = final_fit(
            trainer, end, choice, blends, comparison.lightfm, jobs, final_data, rerankers, final_lightfm
        )
        groups = jobs.take(GROUP_POPULARITY)
        step("final fit")
    bar.close()
    trainer.seconds["total"] = round(time.perf_counter() - started, 2)

    outcome = TrainOutcome(
        None,
        None,
        windows.primary_protocol,
        comparison.table,
        choice.curve,
        blends,
        trainer.seconds,
        intervals=comparison.intervals,
        per_customer=comparison.per_customer,
        validation=tuned,
        unlaunched_items=final_data.n_items - test_data.n_items,
        lightfm_screen=choice.screen,
        lightfm_confirmation=choice.confirmation,
        rerank=rerank_choices,
        fallbacks=comparison.fallbacks,
    )
    workdir = write_bundle(outcome, trainer, final, groups)
    if tracking is not None:
        record = run_record(
            outcome,
            trainer=trainer,
            choice=choice,
            folds=[fold.window for fold in folds],
            test_window=(test_cutoff, end),
        )
        logged: LoggedRun = tracking.log_run(record, workdir)
        outcome.run_id, outcome.version, outcome.tracking_uri = logged
    return outcome
