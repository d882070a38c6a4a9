"""A writer module for `TrackingProcess`'s tests: what ran, in which process, in what order.
`PROBE_FAIL=prepare` (in the environment the process starts with) makes `prepare` fail."""

from __future__ import annotations

import multiprocessing
import os

PREPARED: list[tuple[int, int]] = []  # the process `prepare` ran in and its niceness then


def store() -> str:
    return "probe-store"


def prepare() -> None:
    if os.environ.get("PROBE_FAIL") == "prepare":
        raise RuntimeError("the store refused")
    PREPARED.append((os.getpid(), os.getpriority(os.PRIO_PROCESS, 0)))


def log_run(record: str) -> tuple[int, int, list[tuple[int, int]], str]:
    """This process, its niceness, where `prepare` had run by now (at what niceness), and
    `record` back."""
    if record == "fail":
        raise ValueError("a field the store rejects")
    if record == "die" and multiprocessing.parent_process() is not None:
        os._exit(3)  # the writing process dies (here, the test's own process, it writes)
    return os.getpid(), os.getpriority(os.PRIO_PROCESS, 0), list(PREPARED), record
