"""The one-worker process pools a training run starts (`recommender/background.py`'s second
process, `tracking_process.py`'s writer): how they start and how they stop."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Self


class ClosedOnExit:
    """A context manager for an owner of a process: `close`d on leaving the block, abandoning
    the process's work at once if the block raised (`stop`)."""

    def close(self, abandon: bool = False) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close(abandon=error is not None)


def one_process(initializer: Callable[[], object] | None = None) -> ProcessPoolExecutor:
    # spawn, not fork: the training process has threads (progress bars, MLflow's) whose locks
    # a forked child could inherit held
    return ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=initializer
    )


def stop(executor: ProcessPoolExecutor, abandon: bool) -> None:
    """Stop `executor`'s process: at once with `abandon` (the run is failing), else once it has
    finished its job and frozen its objects (`gc.freeze`, as `cli.main.main` does here). A
    spawned process shuts its interpreter down in full, and the collections it runs then
    walked every object the run's imports left there while this process waited (0.3 s of
    0.4 s on the sample)."""
    if abandon:
        # concurrent.futures has no public way to stop a running job before Python 3.14
        processes = list(getattr(executor, "_processes", {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    else:
        with contextlib.suppress(BrokenProcessPool, RuntimeError):  # gone already
            executor.submit(gc.freeze).result()
    # waited for when abandoned too (the process is gone by then, so it is quick): left
    # running, the pool's own thread raced Python's exit, which then printed an OSError's
    # traceback (a closed pipe) after the command's one-line error
    executor.shutdown(wait=True, cancel_futures=True)
