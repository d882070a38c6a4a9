"""A training run's independent work in a second process.

LightFM is most of a run's time, and all of it on one core (its own threads share the
embeddings and measured slower). A run early-stops it on the latest validation fold, then
fits it from scratch up to five more times (the other validation folds, the test weeks,
the final fit), each for the epochs early stopping chose and on data known before any of
them starts; the catalogue's name similarity, the test weeks' peers (baselines, EASE, ALS,
TIFU-KNN, ...) and every fold's hybrid without LightFM depend on nothing the validation
decides. Later in the run, each protocol's blend tuning and each held-out group of its
reranker decision are independent too, and so are the final fit's hybrid (every component
but LightFM, once the blends are decided), the parts of the test comparison's rankings and
of the final LightFM's top items. A second process, started with the run, runs these jobs
one after another in the order they were submitted (the name similarity, the peers and
the folds' hybrids while this process builds the data and early-stops LightFM; then the
final fit's LightFM, never past early stopping's best epoch so far (`BestEpoch`; from
scratch and without `--search`); then the later ones), except `spare` jobs (the final
LightFM's top items), which it runs only when nothing else is queued. This process builds
and evaluates everything else; each result is waited for where it is needed, and this
process, waiting for one, runs the queued jobs itself meanwhile (never a spare one, nor a
`late` one: the final fit's LightFM, needed only at the end).
LightFM with one thread and a fixed seed gives the same model in either process, and the
peers the same scores (tested); the hybrids' components and the top items are computed on
one BLAS thread wherever they run, so the run's numbers do not depend on where they ran.
While the other process has work, this one keeps its BLAS and OpenMP on one thread
(`_share_cores`). A large argument several jobs take (the run's orders) is sent once, as a
file (`Shared`).

Off (`lightfm.background: false`), a job runs inline when its result is taken.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # a requirement of scikit-learn and implicit
from tqdm import tqdm

from inference.recommender.scoring import LIGHTFM_TOP_BATCH, HybridModel, lightfm_top_items
from storewise.settings import RecommenderSettings
from training.processes import ClosedOnExit, one_process, stop
from training.recommender.data import OrderCodes, TrainData
from training.recommender.evaluate import batch_aligned_parts
from training.recommender.hybrid import fit_hybrid
from training.recommender.models import LightFmHybrid

log = logging.getLogger(__name__)

# the keys of the run's jobs besides the validation folds' LightFM
TEST_PEERS = "test weeks' peers"
TEST_WEEKS = "test weeks' lightfm"
FINAL_FIT = "final fit's lightfm"
FINAL_HYBRID = "final fit's hybrid"
FINAL_TOP = "final fit's lightfm top items"
NAMES = "the catalogue's name similarity"
GROUP_POPULARITY = "the bundle's popularity by region and segment"
TOP_ITEMS_PARTS = 6  # small enough for both processes to share the last ones


T = TypeVar("T")


class Shared(Generic[T]):
    """A large argument several jobs take (the run's orders: 0.3 s to pickle on the sample
    x 3, and again to read, for every job): written to a file once (`BackgroundJobs.share`)
    and pickled as that file's path, so each process reads it at most once. A job reads
    `value`."""

    def __init__(self, value: T, path: Path | None) -> None:
        self.value = value
        self.path = path  # None inline: never pickled

    def __reduce__(self) -> tuple[Callable[[str], Shared[Any]], tuple[str]]:
        if self.path is None:
            raise pickle.PicklingError("a value shared by inline jobs never leaves this process")
        return _read_shared, (str(self.path),)


_SHARED_READ: dict[str, Any] = {}  # in the other process: the shared values read so far, by file


def _read_shared(path: str) -> Shared[Any]:
    if path not in _SHARED_READ:
        _SHARED_READ[path] = pickle.loads(Path(path).read_bytes())
    return Shared(_SHARED_READ[path], Path(path))


def fit_components(
    data: TrainData,
    orders: Shared[pd.DataFrame],
    codes: Shared[OrderCodes],
    settings: RecommenderSettings,
    components: Collection[str],
    horizon_days: float | None = None,
    users: np.ndarray | None = None,
) -> HybridModel:
    """`fit_hybrid` without LightFM (`with_lightfm` adds it where the result is taken): a
    validation fold's hybrid or the final fit's, as a job. On one BLAS thread wherever it
    runs, as it would in the other process: EASE's product and inverse on two threads differ
    in the last bits (the sample x 3's final neighbour lists did), and a run's numbers and
    registered model must not depend on which process fitted what (every thread pool, BLAS
    and OpenMP, as `_set_up_second_process` sets them over there)."""
    with threadpool_limits(1):
        return fit_hybrid(
            data,
            orders.value,
            None,
            settings,
            components=components,
            horizon_days=horizon_days,
            users=users,
            codes=codes.value,
        )


def fit_lightfm(
    model: LightFmHybrid, data: TrainData, top_items: int = 0, users: np.ndarray | None = None
) -> LightFmHybrid:
    """`model` fitted on `data`, `with_top_items`."""
    return with_top_items(model.fit(data), top_items, users)


def with_top_items(model: LightFmHybrid, top_items: int, users: np.ndarray | None) -> LightFmHybrid:
    """With `top_items`, the fitted `model` also holds every customer's (or `users`') that
    many best items (`model.top_items`: what the hybrid that takes this LightFM reads, as the
    service does)."""
    if top_items:
        model.top_items = lightfm_top_items(
            model.user_embedding, model.item_embedding, model.item_bias, top_items, users
        )
    return model


def top_items_part(
    user_embedding: np.ndarray, item_embedding: np.ndarray, item_bias: np.ndarray, top_items: int
) -> np.ndarray:
    """The `top_items` best items of each of a part's customers (`user_embedding`: their rows,
    from a batch's first row on) by LightFM (`submit_top_items`), in the batches a call over
    every customer would use, on one thread wherever it runs: a float32 product's last bits
    can change with the thread count, and with them the order of near ties."""
    with threadpool_limits(1):
        return lightfm_top_items(
            user_embedding, item_embedding, item_bias, top_items, batch=LIGHTFM_TOP_BATCH
        )


def submit_top_items(jobs: BackgroundJobs, key: str, model: LightFmHybrid, top_items: int) -> list[str]:
    """Every customer's `top_items` best items by the fitted `model` (`with_top_items`) in
    `TOP_ITEMS_PARTS` spare jobs, cut between `lightfm_top_items`' batches (each row then
    comes from the same product as in one call), each sent only its customers' rows: the
    final fit's for 70,000 customers of the large demo shop took 11.6 s, computed in the job
    that fitted it while this process fitted the folds' LightFMs itself. As spare jobs, the
    other process computes them between the later jobs (the blend's, the test
    comparison's), and this one whatever is left when they are taken. `take_top_items` sets
    them."""
    rows = np.arange(len(model.user_embedding))
    keys = []
    parts = batch_aligned_parts(rows, TOP_ITEMS_PARTS, LIGHTFM_TOP_BATCH)
    for index, part in enumerate(parts):
        keys.append(f"{key}, part {index + 1} of {len(parts)}")
        user_rows = model.user_embedding[part[0] : part[-1] + 1] if len(part) else model.user_embedding[:0]
        jobs.submit(
            keys[-1], top_items_part, user_rows, model.item_embedding, model.item_bias, top_items, spare=True
        )
    return keys


def take_top_items(jobs: BackgroundJobs, keys: list[str], model: LightFmHybrid) -> LightFmHybrid:
    """`model` with `submit_top_items`' parts stacked in the customers' order as its `top_items`:
    the parts still queued first (computed here), then those the other process has."""
    parts: dict[str, np.ndarray] = {}
    while len(parts) < len(keys):
        waiting = [key for key in keys if key not in parts]
        key = next((key for key in waiting if jobs.queued(key)), waiting[0])
        parts[key] = jobs.take(key)
    model.top_items = np.vstack([parts[key] for key in keys])
    return model


class BestEpoch:
    """Early stopping's best epoch so far, and whether it has stopped, in a file both
    processes read. The final fit's LightFM (from scratch, the run's settings) needs exactly
    the epochs early stopping will choose, and that is never fewer than its best epoch so
    far: so it trains in the other process alongside early stopping, never past that
    epoch (`fit_lightfm_following`), instead of starting when early stopping has ended
    (on the sample x 3 the other process idled through 9 of early stopping's 15 s, then
    took 20 s for the final fit's LightFM)."""

    POLL_SECONDS = 0.02

    def __init__(self, path: Path) -> None:
        self.path = path
        self.owner = os.getpid()  # the process that runs early stopping and publishes

    def publish(self, best: int, stopped: bool) -> None:
        """Early stopping's side (`Trainer.early_stopping`'s `progress`): written whole,
        then renamed, so the other side never reads half a file."""
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(f"{best} {int(stopped)}", encoding="utf-8")
        os.replace(partial, self.path)

    def read(self) -> tuple[int, bool]:
        """(best epoch so far, stopped); (0, False) before the first epoch."""
        try:
            best, stopped = self.path.read_text(encoding="utf-8").split()
        except FileNotFoundError:
            return 0, False
        return int(best), stopped == "1"

    def stop_after(self, epoch: int) -> bool:
        """The follower's side, after training `epoch`: False once early stopping's best
        epoch is later (the next epoch is needed), True once it has stopped at this one;
        until then it waits. It never waits on nothing: run by early stopping's own process
        before that has stopped, or once that process or the file's folder is gone, it raises."""
        while True:
            best, stopped = self.read()
            if best > epoch:
                return False
            if stopped:
                return True
            if os.getpid() == self.owner:
                raise RuntimeError("LightFM following early stopping ran in its process before it stopped")
            try:
                os.kill(self.owner, 0)  # no signal: whether the process exists
            except ProcessLookupError:
                raise RuntimeError("the process running early stopping is gone") from None
            if not self.path.parent.exists():
                raise RuntimeError(f"{self.path.parent} is gone: the run that made it has ended")
            time.sleep(self.POLL_SECONDS)


def fit_lightfm_following(model: LightFmHybrid, data: TrainData, best: BestEpoch) -> LightFmHybrid:
    """LightFM fitted for as many epochs as early stopping chooses, trained while it runs
    (`BestEpoch`; `model` set up for the most epochs it may choose): epoch by epoch with
    the same seed, so the same model as one fitted from scratch for those epochs once they
    are known. Submitted just before early stopping starts, which takes no job: this
    process never runs it while early stopping is still undecided. The final fit's, whose
    top items are jobs of their own (`submit_top_items`)."""
    model.fit(data, until=best.stop_after)
    model.epochs = model.epochs_trained
    return model


@dataclass(frozen=True)
class LaterFit:
    """A later from-scratch LightFM of the run (`LightFmChoice.schedule`): the data it is
    fitted on, and how many best items of whose the hybrid taking it reads, computed in the
    same job (`top_items` 0: none, as for a validation fold's, whose hybrid scores from the
    representations, or the final fit's, whose are jobs of their own; `users` None: every
    customer's). A LightFM following early stopping computes none. `spare`: needed only
    once the blends are decided (the test weeks'), so a `spare` job: this process never
    fits it while waiting for another result. As an ordinary job, this process, waiting for
    the third validation fold's LightFM, fitted the fourth's and then this one while the
    other process, done with the third, idled 14 s (the wide stand-in with LightFM kept).
    `late`: needed at the run's end (the final fit's), a `late` job: the other process fits
    it in its turn, and this one never while waiting for another result."""

    data: TrainData
    top_items: int = 0
    users: np.ndarray | None = None
    spare: bool = False
    late: bool = False


def _set_up_second_process() -> None:
    """The second process's BLAS and OpenMP on one thread: it is there for the second core,
    and OpenBLAS's own threads (two here) then competed with this process for it: on the
    large demo shop, the final fit's top items computed over there added as much time to
    this process's blend tuning as they took off its final fit.

    And its progress bars' lock a thread lock: by default tqdm's first bar makes a
    multiprocessing one, which a spawned process registers with Python's resource tracker;
    stopped at once (a failing run), the process never unregistered it, and the run's one-line
    error was followed by a warning of a leaked semaphore."""
    threadpool_limits(1)
    tqdm.set_lock(threading.RLock())


def _started() -> None:
    """The first thing the second process runs (`BackgroundJobs`): nothing, once started."""


@dataclass
class _Job:
    run: Callable[..., Any]
    arguments: tuple[Any, ...]
    future: Future[Any] | None = None  # set once handed to the other process
    spare: bool = False  # for the other process's spare time (`BackgroundJobs.submit`)
    late: bool = False  # needed at the run's end: never run here while waiting for another


class BackgroundJobs(ClosedOnExit):
    """Jobs by key, run in a second process (or inline when `background` is False). Use as a
    context manager: leaving it drops the jobs nobody took and stops the process.

    The other process is handed one job at a time (the executor's own queue would mark the
    next jobs running at once), the first queued one that is not spare, else the first
    spare one. Waiting for a job that is still running, this process runs the next queued
    job that is not spare itself (every submitted job is needed later; its result is kept
    for its `take`); a spare job runs here only when taken while still queued."""

    def __init__(self, background: bool) -> None:
        self._executor = one_process(_set_up_second_process) if background else None
        self._jobs: dict[str, _Job] = {}  # not taken yet, in submission order
        self._done: dict[str, Any] = {}  # run here ahead of their `take`
        self._lock = threading.Lock()  # the executor's thread hands on the next job
        # running over there but no longer in `_jobs` (dropped while running, or `_started`):
        # the next job is handed on only once they are done, so it stays this process's to take
        self._untracked: list[Future[Any]] = []
        self.ran_here: list[str] = []  # jobs that were to run over there but ran here
        self._threads: threadpool_limits | None = None  # this process's limits while in use
        self._scratch: Path | None = None
        self._shared: dict[int, Shared[Any]] = {}  # by the shared value's id (held here)
        if self._executor is not None:
            # started now rather than at the first job: the process imports the run's modules
            # (a few seconds) while this one opens the shop and builds the data at each cutoff
            started = self._executor.submit(_started)
            self._untracked.append(started)
            started.add_done_callback(self._hand_on)

    @property
    def scratch(self) -> Path:
        """A folder for files the jobs share with this process while they run (`BestEpoch`),
        made when first asked for and removed at `close`."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="storewise-jobs-"))
        return self._scratch

    def share(self, value: T) -> Shared[T]:
        """`value` for jobs to take as a `Shared` argument: with a second process, written to
        the scratch folder the first time it is shared."""
        if id(value) not in self._shared:
            path = None
            if self.background:
                path = self.scratch / f"shared-{len(self._shared)}.pickle"
                path.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            self._shared[id(value)] = Shared(value, path)
        return self._shared[id(value)]

    @property
    def background(self) -> bool:
        return self._executor is not None

    def __contains__(self, key: str) -> bool:
        return key in self._jobs or key in self._done

    def _share_cores(self) -> None:
        """This process's BLAS and OpenMP on one thread while the other process has work,
        on all of them when it has none: two threads here and one there on two cores slowed
        both (interleaved runs, benchmarks/README.md "Session 17": the sample x 3 83.0 and
        77.9 s against 87.1 and 86.5 s with two threads here, the large demo shop 135.0
        against 157.6 s). The limit is lifted when the other process has nothing left, so
        this one has both cores to itself then (a limit held for a whole run, in a version
        not kept, left the large demo shop's test comparison at 20.3 s against 14.4 s,
        single runs). Called from this process's own thread only (at submit, take and
        drop), never while it is inside a BLAS call."""
        with self._lock:
            busy = self._executor is not None and (
                any(job.future is None or not job.future.done() for job in self._jobs.values())
                or self._busy_untracked()
            )
        if busy and self._threads is None:
            self._threads = threadpool_limits(1)
        elif not busy and self._threads is not None:
            self._threads.restore_original_limits()
            self._threads = None

    def queued(self, key: str) -> bool:
        """Whether the job is still waiting for either process (taking it runs it here)."""
        with self._lock:
            job = self._jobs.get(key)
            return job is not None and job.future is None

    def finished(self, key: str) -> bool:
        """Whether the job's result is ready to take without waiting."""
        if key in self._done:
            return True
        job = self._jobs.get(key)
        return job is not None and job.future is not None and job.future.done()

    def submit(
        self, key: str, run: Callable[..., Any], *arguments: Any, spare: bool = False, late: bool = False
    ) -> None:
        """Queue `run(*arguments)` (a module-level function: it is pickled by name) behind
        the jobs submitted before it. The arguments are pickled later, in the executor's
        threads, while this one goes on: nothing may change them meanwhile (a model's
        caches filled as it scores are left out of its pickle: `HybridModel.__getstate__`).
        A `spare` job is needed late: the other process runs it only when no other job is
        queued, and this one only when it is taken (never while waiting for another). A
        `late` job is needed at the run's end too, but the other process takes it in its
        turn; this one, too, runs it only when it is taken: started here while waiting for a
        short job, a long one held this process long after the wait (the sample's final
        LightFM, 6.5 s, claimed while waiting 0.6 s for a fold's components) while the other
        process, done with the short job, had nothing left to do."""
        with self._lock:
            self._jobs[key] = _Job(run, arguments, spare=spare, late=late)
        self._hand_on()
        self._share_cores()

    def _busy_untracked(self) -> bool:
        """Whether a job no longer in `_jobs` is still running over there (under the lock)."""
        self._untracked = [future for future in self._untracked if not future.done()]
        return bool(self._untracked)

    def _hand_on(self, _finished: Future[Any] | None = None) -> None:
        """Give the other process the first queued job that is not spare (else the first spare
        one) when it has none running."""
        with self._lock:
            if (
                self._executor is None
                or any(job.future is not None and not job.future.done() for job in self._jobs.values())
                or self._busy_untracked()
            ):
                return
            waiting = [job for job in self._jobs.values() if job.future is None]
            queued = next((job for job in waiting if not job.spare), waiting[0] if waiting else None)
            if queued is None:
                return
            try:
                queued.future = self._executor.submit(queued.run, *queued.arguments)
            except (BrokenProcessPool, RuntimeError):
                return  # the other process is gone: the job stays queued and runs here
        queued.future.add_done_callback(self._hand_on)

    def _claim(self, key: str | None = None) -> tuple[str, _Job] | None:
        """Take `key` (or the first job that is neither spare nor late) off the queue if the
        other process does not have it."""
        with self._lock:
            for name, job in self._jobs.items():
                if (name == key if key is not None else not (job.spare or job.late)) and job.future is None:
                    del self._jobs[name]
                    return name, job
        return None

    def take(self, key: str) -> Any:
        """The job's result: kept, run here (inline, or still queued), or waited for while
        this process runs queued jobs."""
        try:
            return self._take(key)
        finally:
            self._share_cores()

    def _take(self, key: str) -> Any:
        if key in self._done:
            return self._done.pop(key)
        claimed = self._claim(key)
        if claimed is not None:
            return claimed[1].run(*claimed[1].arguments)
        future = self._jobs[key].future
        assert future is not None
        while not future.done():
            queued = self._claim()
            if queued is None:
                break
            name, job = queued
            self._done[name] = job.run(*job.arguments)
            self.ran_here.append(name)
        with self._lock:
            job = self._jobs.pop(key)
        try:
            return future.result()
        except BrokenProcessPool:
            # the other process died (killed, out of memory): this one does the work
            log.warning("the second training process stopped; running %r and what follows here", key)
            self._stop_executor()
            self.ran_here.append(key)
            return job.run(*job.arguments)

    def _stop_executor(self) -> None:
        """Every job not finished over there runs here when taken."""
        with self._lock:
            executor, self._executor = self._executor, None
            for job in self._jobs.values():
                future = job.future
                # a result that came back before the process died is kept
                if future is not None and (
                    not future.done()
                    or future.cancelled()
                    or isinstance(future.exception(), BrokenProcessPool)
                ):
                    job.future = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def drop(self, key: str) -> None:
        """A job no longer needed: taken off the queue (one already running runs on, and the
        next job waits for it: handed on behind it, it would be out of this process's reach)."""
        self._done.pop(key, None)
        with self._lock:
            job = self._jobs.pop(key, None)
            if job is not None and job.future is not None and not job.future.done():
                self._untracked.append(job.future)
        self._share_cores()

    def close(self, abandon: bool = False) -> None:
        """Drop what nobody took and stop the other process: waiting for a job it is still
        running, or, with `abandon` (the run is failing), stopping it at once."""
        with self._lock:
            self._jobs.clear()
        self._done.clear()
        self._shared.clear()
        executor, self._executor = self._executor, None
        self._share_cores()
        if executor is not None:
            stop(executor, abandon)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
