"""The second process of a training run: jobs come back in the order asked, the same as
inline, and this process runs queued jobs itself rather than wait; a LightFM trained there
alongside early stopping follows its best epoch."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from storewise.config import CONFIG_DIR
from storewise.settings import load_recommender_settings
from tests.style import style_data, style_shop
from training.recommender.background import BackgroundJobs, BestEpoch, Shared
from training.recommender.models import LightFmHybrid


def where(seconds: float, label: str) -> tuple[str, int]:
    """Sleeps, then says which process it ran in (module-level: the other process imports it)."""
    time.sleep(seconds)
    return label, os.getpid()


def started(jobs: BackgroundJobs) -> BackgroundJobs:
    """`jobs` once its other process is up and free: a job submitted while it is still
    starting stays queued (this process would run it if taken), as it does in a run."""
    jobs.submit("up", where, 0.0, "up")
    while jobs.queued("up"):
        time.sleep(0.01)
    assert jobs.take("up")[1] != os.getpid()
    return jobs


def dies_over_there(label: str) -> tuple[str, int]:
    """Kills the process it runs in unless that is the test's own (as the kernel's OOM
    killer would), else answers like `where`."""
    if multiprocessing.parent_process() is not None:
        os._exit(1)
    return label, os.getpid()


def failing() -> None:
    raise ValueError("no such column: price")


def test_jobs_run_in_another_process_and_queued_ones_here_while_waiting() -> None:
    with started(BackgroundJobs(background=True)) as jobs:
        jobs.submit("slow", where, 1.5, "slow")
        time.sleep(0.5)  # the other process is up and has started "slow"
        jobs.submit("next", where, 0.0, "next")
        jobs.submit("last", where, 0.0, "last")
        label, pid = jobs.take("slow")
        assert label == "slow"
        assert pid != os.getpid()
        # waiting for "slow", this process ran the queued jobs itself, in order
        assert jobs.ran_here == ["next", "last"]
        assert jobs.take("next") == ("next", os.getpid())
        assert jobs.take("last") == ("last", os.getpid())
        assert "last" not in jobs


def not_run_here_while_waiting(jobs: BackgroundJobs, key: str, **kind: bool) -> None:
    """A job of `kind` queued before "next" while this process waits for "slow": this
    process runs "next" meanwhile, not it."""
    jobs.submit("slow", where, 1.5, "slow")
    time.sleep(0.5)  # the other process has started "slow"
    jobs.submit(key, where, 0.8 if kind.get("late") else 0.0, key, **kind)
    jobs.submit("next", where, 0.0, "next")
    assert jobs.take("slow")[0] == "slow"
    # waiting for "slow", this process ran "next", not the job queued before it
    assert jobs.ran_here == ["next"]
    assert jobs.take("next") == ("next", os.getpid())


def run_here_when_taken_while_queued(jobs: BackgroundJobs, key: str, **kind: bool) -> None:
    jobs.submit("busy", where, 1.0, "busy")
    time.sleep(0.3)  # the other process has started "busy"
    jobs.submit(key, where, 0.0, key, **kind)
    assert jobs.take(key) == (key, os.getpid())  # taken while queued: here
    assert jobs.take("busy")[1] != os.getpid()


def test_spare_jobs_wait_for_the_other_process_and_run_here_only_when_taken() -> None:
    with started(BackgroundJobs(background=True)) as jobs:
        not_run_here_while_waiting(jobs, "spare", spare=True)
        while jobs.queued("spare"):  # handed on as "slow" finished, just after its result
            time.sleep(0.01)
        label, pid = jobs.take("spare")  # the other process's, once it had nothing else
        assert label == "spare"
        assert pid != os.getpid()
        run_here_when_taken_while_queued(jobs, "late spare", spare=True)
        assert jobs.ran_here == ["next"]


def test_late_jobs_run_over_there_in_their_turn_and_here_only_when_taken() -> None:
    """The final fit's LightFM: needed at the end, so never started here while this process
    waits for a short job (the other process would then idle), but not held back behind
    the jobs queued after it either, as a spare one is."""
    with started(BackgroundJobs(background=True)) as jobs:
        not_run_here_while_waiting(jobs, "late", late=True)
        label, pid = jobs.take("late")  # handed on as "slow" finished
        assert label == "late"
        assert pid != os.getpid()

        jobs.submit("first", where, 1.0, "first")
        time.sleep(0.3)  # the other process has started "first"
        jobs.submit("late", where, 0.8, "late", late=True)
        jobs.submit("after", where, 0.0, "after")
        jobs.submit("spare", where, 0.0, "spare", spare=True)
        while not jobs.finished("first"):
            time.sleep(0.01)
        while jobs.queued("late"):
            time.sleep(0.01)
        # in its turn: before "after", which was queued behind it (a spare job would wait)
        assert jobs.queued("after")
        assert jobs.queued("spare")
        assert jobs.take("late")[1] != os.getpid()  # waiting for it, this process ran "after"
        assert jobs.take("first")[1] != os.getpid()
        assert jobs.ran_here == ["next", "after"]

        run_here_when_taken_while_queued(jobs, "late too", late=True)
        assert jobs.ran_here == ["next", "after"]


def test_a_job_dropped_while_running_holds_back_the_next_one_for_this_process() -> None:
    """The other process runs a dropped job on; the next job is not handed on behind it (it
    would wait there for a result nobody needs), so taking it runs it here."""
    with started(BackgroundJobs(background=True)) as jobs:
        jobs.submit("unneeded", where, 2.0, "unneeded")
        time.sleep(0.5)  # the other process has started it
        jobs.drop("unneeded")
        jobs.submit("next", where, 0.0, "next")
        assert jobs.queued("next")
        assert jobs.take("next") == ("next", os.getpid())


def shared_rows(table: Shared[np.ndarray]) -> tuple[int, int]:
    """How many rows the shared table has, and in which process (module level: pickled)."""
    return len(table.value), os.getpid()


def test_a_shared_value_goes_to_the_other_process_as_a_file_once() -> None:
    table = np.arange(12).reshape(6, 2)
    with started(BackgroundJobs(background=True)) as jobs:
        shared = jobs.share(table)
        assert jobs.share(table) is shared  # written once
        assert shared.path is not None
        assert shared.path.exists()
        assert len(pickle.dumps(shared)) < 300  # the path, not the rows
        jobs.submit("first", shared_rows, shared)
        jobs.submit("second", shared_rows, shared)
        rows, pid = jobs.take("first")
        assert rows == 6
        assert pid != os.getpid()
        assert jobs.take("second")[0] == 6  # over there, or here while "first" ran
    assert not shared.path.exists()  # removed with the run's scratch folder
    with BackgroundJobs(background=False) as jobs:
        inline = jobs.share(table)
        jobs.submit("here", shared_rows, inline)
        assert jobs.take("here") == (6, os.getpid())
        with pytest.raises(pickle.PicklingError):
            pickle.dumps(inline)


def test_inline_jobs_run_when_taken_and_dropped_ones_never() -> None:
    with BackgroundJobs(background=False) as jobs:
        jobs.submit("kept", where, 0.0, "kept")
        jobs.submit("dropped", failing)
        jobs.drop("dropped")
        assert jobs.take("kept") == ("kept", os.getpid())
        assert jobs.ran_here == []
        assert "dropped" not in jobs


def test_a_job_that_fails_over_there_raises_its_error_here() -> None:
    with started(BackgroundJobs(background=True)) as jobs:
        jobs.submit("bad", failing)
        time.sleep(0.5)
        with pytest.raises(ValueError, match="no such column: price"):
            jobs.take("bad")


def test_when_the_other_process_dies_its_jobs_run_here() -> None:
    with started(BackgroundJobs(background=True)) as jobs:
        jobs.submit("killed", dies_over_there, "killed")
        jobs.submit("queued", where, 0.0, "queued")
        assert jobs.take("killed") == ("killed", os.getpid())
        assert jobs.take("queued") == ("queued", os.getpid())
        assert "killed" in jobs.ran_here


def test_a_result_that_came_back_before_the_process_died_is_kept() -> None:
    with started(BackgroundJobs(background=True)) as jobs:
        jobs.submit("done", where, 0.0, "done")
        while not jobs.finished("done"):  # the other process starts and finishes it
            time.sleep(0.05)
        jobs.submit("killed", dies_over_there, "killed")
        assert jobs.take("killed") == ("killed", os.getpid())
        label, pid = jobs.take("done")
        assert label == "done"
        assert pid != os.getpid(), "not run a second time here"
        assert jobs.ran_here == ["killed"]


def fail_while_running(seconds: float) -> None:
    with started(BackgroundJobs(background=True)) as jobs:
        jobs.submit("long", where, seconds, "long")
        time.sleep(1.0)
        raise KeyError("a column")


def test_a_failing_run_does_not_wait_for_the_job_still_running() -> None:
    started = time.perf_counter()
    with pytest.raises(KeyError):
        fail_while_running(30.0)
    assert time.perf_counter() - started < 10


def blas_threads() -> int:
    """This process's BLAS threads (numpy's OpenBLAS)."""
    from threadpoolctl import threadpool_info

    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


def test_this_process_keeps_one_thread_while_the_other_has_work() -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2, "blas"):  # two, whatever this machine's cores
        before = blas_threads()
        assert before == 2
        share_the_cores(before)


def share_the_cores(before: int) -> None:
    with started(BackgroundJobs(background=True)) as jobs:
        assert blas_threads() == before  # nothing over there yet
        jobs.submit("slow", where, 1.0, "slow")
        assert blas_threads() == 1
        jobs.take("slow")
        assert blas_threads() == before  # the other process has nothing left
        jobs.submit("again", where, 1.0, "again")  # long enough to be running at the check
        assert blas_threads() == 1
    assert blas_threads() == before  # closed: every thread back
    with BackgroundJobs(background=False) as jobs:
        jobs.submit("inline", where, 0.0, "inline")
        assert blas_threads() == before  # inline, this process is alone
        jobs.take("inline")


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_follower_trains_no_epoch_past_early_stoppings_best_and_stops_at_the_chosen_one(
    tmp_path: Path,
) -> None:
    """The follower (a thread here, the other process in a run) trains its first epoch, then
    one more only once early stopping's best epoch is past the ones it has: it never trains
    an epoch early stopping may not choose, and stops where early stopping has stopped."""
    best = BestEpoch(tmp_path / "best_epoch")
    assert best.read() == (0, False)
    trained = [1]
    # the follower's side as the other process sees it: early stopping runs elsewhere (here
    # "elsewhere" is this test's parent process, alive throughout)
    followed = BestEpoch(best.path)
    followed.owner = os.getppid()

    def follow() -> None:
        while not followed.stop_after(trained[-1]):
            trained.append(trained[-1] + 1)

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.2)
    assert trained == [1]  # nothing known: it waits
    best.publish(1, False)
    time.sleep(0.2)
    assert trained == [1]  # epoch 1 is the best so far: the second may never be chosen
    best.publish(3, False)
    wait_for(lambda: trained == [1, 2, 3])
    best.publish(3, False)  # epoch 4 did not improve on 3
    time.sleep(0.2)
    assert trained == [1, 2, 3]
    best.publish(3, True)  # stopped: 3 epochs chosen
    follower.join(timeout=10)
    assert not follower.is_alive()
    assert trained == [1, 2, 3]
    assert best.read() == (3, True)


def test_a_follower_in_early_stoppings_own_process_raises_instead_of_waiting(tmp_path: Path) -> None:
    """Early stopping's own process, taking the follower's job before it has stopped, would
    wait on itself for ever, and so would a follower whose early stopping's process died:
    both raise; once stopped, the job runs anywhere."""
    best = BestEpoch(tmp_path / "best_epoch")
    best.publish(2, False)
    assert best.stop_after(1) is False  # the second epoch is needed: no wait
    with pytest.raises(RuntimeError, match="before it stopped"):
        best.stop_after(2)
    gone = subprocess.Popen(["true"])
    gone.wait()
    orphaned = BestEpoch(best.path)
    orphaned.owner = gone.pid  # early stopping's process died before it stopped
    with pytest.raises(RuntimeError, match="is gone"):
        orphaned.stop_after(2)
    best.publish(2, True)
    assert best.stop_after(2) is True


def test_lightfm_told_to_stop_after_an_epoch_is_lightfm_fitted_for_that_many() -> None:
    """`until` stops training after the epoch it names: the same model, to the last bit, as
    one fitted for that many epochs (what the follower relies on)."""
    data = style_data(style_shop())
    settings = load_recommender_settings(CONFIG_DIR).lightfm
    stopped = LightFmHybrid(settings, 6).fit(data, until=lambda epoch: epoch == 3)
    fitted = LightFmHybrid(settings, 3).fit(data)
    assert stopped.epochs_trained == fitted.epochs_trained == 3
    for name in ("user_embedding", "item_embedding", "item_bias", "user_bias"):
        np.testing.assert_array_equal(getattr(stopped, name), getattr(fitted, name))
    longer = LightFmHybrid(settings, 4).fit(data)
    assert not np.array_equal(longer.item_embedding, fitted.item_embedding)
