"""MLflow in a process of its own: imported and its store opened while a model trains, the
run written there once the model is trained. The training process never imports MLflow.

At the end of `train recommender`, importing MLflow (with Matplotlib and the store's
SQLAlchemy) took about 2 s and opening a new SQLite store (its tables and migrations) 1.3 s,
with one core idle: the run was trained by then, and only the writing was left. Started
with the command, this process imports while the training process imports its own modules
and reads the shop (one core is idle then as well), and opens the store once the shop is
read (`open`), so a command that fails on the shop's data leaves no store behind.

`writer` names the module that writes (imported over there only): `prepare()` opens the
store, `log_run(*arguments)` writes the run and returns what it wrote, `store()` says where
(for errors). Without `background` (`lightfm.background: false`: one process), both run
here when the run is written.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from storewise.config import CONFIG_DIR
from storewise.errors import StorewiseError
from storewise.settings import load_recommender_settings
from training.processes import ClosedOnExit, one_process, stop

RECOMMENDER_WRITER = "training.recommender.mlflow_run"

logger = logging.getLogger(__name__)


class TrackingError(StorewiseError):
    """The tracking store could not be opened or written to; the message says which and why
    (the error itself is raised in the other process, and not every error pickles)."""


# How much nicer than the command the process imports and opens the store. On the sample
# that took 5.1 s of CPU: 1.9 s in the first two seconds, while the training process
# imported alone, the rest alongside the run. At 10 steps (CPU weight 110 against the
# training processes' 1,024) it took about a tenth of a core while both were busy and was
# done before the run ended; at 19 it was still opening the store then, and what is left
# at the end costs its whole time, against about half of it taken while both were busy.
PREPARING = 10


def _set_niceness(niceness: int) -> None:
    """Lowering it back to the command's takes a privilege (root's): without it, the run is
    written at the raised niceness (when the training is over and this process is the one
    left running)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, min(niceness, 19))


def _import(writer: str, niceness: int) -> None:
    _set_niceness(niceness + PREPARING)
    importlib.import_module(writer)


def _run_there(writer: str, function: str, arguments: tuple[Any, ...], niceness: int) -> Any:
    """`_run` in the writing process: preparing `PREPARING` steps nicer than the command
    (`niceness`), writing at the command's niceness."""
    _set_niceness(niceness + PREPARING if function == "prepare" else niceness)
    return _run(writer, function, arguments)


def _run(writer: str, function: str, arguments: tuple[Any, ...]) -> Any:
    module = importlib.import_module(writer)
    try:
        return getattr(module, function)(*arguments)
    except Exception as error:
        logger.debug("%s.%s failed", writer, function, exc_info=True)
        doing = "open the tracking store" if function == "prepare" else "write the run to"
        raise TrackingError(f"could not {doing} {module.store()}: {type(error).__name__}: {error}") from None


class TrackingProcess(ClosedOnExit):
    """The writing process (`writer`'s module); use as a context manager."""

    def __init__(self, writer: str, background: bool) -> None:
        self._writer = writer
        self._executor = one_process() if background else None
        self._niceness = os.getpriority(os.PRIO_PROCESS, 0)
        self._opened: Future[Any] | None = None
        if self._executor is not None:
            self._executor.submit(_import, writer, self._niceness)

    def open(self) -> None:
        """Open the store over there (creating it if new), now that the run will write one."""
        if self._executor is not None and self._opened is None:
            try:
                self._opened = self._executor.submit(_run_there, self._writer, "prepare", (), self._niceness)
            except (BrokenProcessPool, RuntimeError):
                self._gone()

    def check(self) -> None:
        """Raise the store's error if opening it has failed already: a run that could not be
        written stops before it trains any further."""
        opened = self._opened
        if opened is not None and opened.done() and not isinstance(opened.exception(), BrokenProcessPool):
            opened.result()

    def log_run(self, *arguments: Any) -> Any:
        self.open()
        if self._executor is not None and self._opened is not None:
            try:
                self._opened.result()
                return self._executor.submit(
                    _run_there, self._writer, "log_run", arguments, self._niceness
                ).result()
            except (BrokenProcessPool, RuntimeError):
                self._gone()
        _run(self._writer, "prepare", ())
        return _run(self._writer, "log_run", arguments)

    def _gone(self) -> None:
        """The process stopped (killed, out of memory, or it could not start: spawned from a
        script without the `if __name__ == "__main__":` guard, it ran the script again and
        failed there): this one writes the run, as the training's jobs run here when their
        process stops (`BackgroundJobs`)."""
        logger.warning("the process writing the run to MLflow stopped; writing it here")
        self._opened = None
        self.close(abandon=True)

    def close(self, abandon: bool = False) -> None:
        """Stop the process (`processes.stop`)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            stop(executor, abandon)


def recommender_tracking(config_dir: Path = CONFIG_DIR) -> TrackingProcess:
    """The recommender's writing process: in a process of its own as its training's second
    process is (`lightfm.background`)."""
    return TrackingProcess(RECOMMENDER_WRITER, load_recommender_settings(config_dir).lightfm.background)
