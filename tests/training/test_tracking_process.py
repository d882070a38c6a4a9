"""The run written by a process of its own (`training/tracking_process.py`): the store opened
there before the run is written, errors back here as one line, nothing written on failure."""

from __future__ import annotations

import os
import time

import pytest

from tests.training import tracking_probe
from training.tracking_process import PREPARING, TrackingError, TrackingProcess

PROBE = "tests.training.tracking_probe"


def test_the_store_is_opened_then_the_run_written_in_the_other_process() -> None:
    """Opened nicer than this process (it takes the time the training leaves idle), written at
    this process's niceness (a privilege to go back to: root's, else it stays nicer)."""
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    with TrackingProcess(PROBE, background=True) as tracking:
        tracking.open()
        there, writing_niceness, prepared, record = tracking.log_run("run 1")
    assert there != os.getpid()
    assert prepared == [(there, min(niceness + PREPARING, 19))]  # once, over there, before the run
    assert writing_niceness == (niceness if os.geteuid() == 0 else min(niceness + PREPARING, 19))
    assert record == "run 1"
    assert tracking_probe.PREPARED == []  # nothing ran here
    assert os.getpriority(os.PRIO_PROCESS, 0) == niceness


def test_without_background_both_run_here_when_the_run_is_written() -> None:
    tracking_probe.PREPARED.clear()
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    with TrackingProcess(PROBE, background=False) as tracking:
        tracking.open()
        assert tracking_probe.PREPARED == []  # not before the run is written
        here, writing_niceness, prepared, _ = tracking.log_run("run 1")
    assert here == os.getpid()
    assert prepared == [(os.getpid(), niceness)]  # this process's niceness left alone
    assert writing_niceness == niceness
    tracking_probe.PREPARED.clear()


def check_until_raised(tracking: TrackingProcess, seconds: float = 60) -> None:
    """`check` as the trainer calls it at each step's end, until it raises (or `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tracking.check()
        time.sleep(0.05)


def test_a_store_that_fails_to_open_stops_the_run_at_its_next_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_FAIL", "prepare")  # the process starts with it
    with TrackingProcess(PROBE, background=True) as tracking:
        tracking.open()
        with pytest.raises(TrackingError) as failed:
            check_until_raised(tracking)
        assert (
            str(failed.value)
            == "could not open the tracking store probe-store: RuntimeError: the store refused"
        )
        with pytest.raises(TrackingError, match="could not open the tracking store"):
            tracking.log_run("run 1")


@pytest.mark.parametrize("background", [True, False])
def test_a_run_the_store_rejects_is_one_line_naming_the_error(background: bool) -> None:
    with TrackingProcess(PROBE, background=background) as tracking, pytest.raises(TrackingError) as failed:
        tracking.log_run("fail")
    assert (
        str(failed.value) == "could not write the run to probe-store: ValueError: a field the store rejects"
    )


def test_a_writer_that_dies_leaves_the_run_to_this_process(caplog: pytest.LogCaptureFixture) -> None:
    with TrackingProcess(PROBE, background=True) as tracking:
        tracking.open()
        here, _, prepared, record = tracking.log_run("die")
        tracking.check()  # no error: the run is written
    assert here == os.getpid()
    assert prepared[-1] == (os.getpid(), os.getpriority(os.PRIO_PROCESS, 0))  # opened here too
    assert record == "die"
    assert "the process writing the run to MLflow stopped; writing it here" in caplog.text
    tracking_probe.PREPARED.clear()
