"""The service's log writer on its own (no server): rotation by size and by day with
retention, one file per process, and a rewrite (erasure) swapped in while processes append:
no line lost."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from serving.logs import JsonLines
from storewise.service_logs import PRICE_AUDIT, ROTATED, log_files


def test_the_audit_log_rotates_and_keeps_what_it_is_told(tmp_path: Path) -> None:
    from serving.logs import JsonLines

    log = JsonLines(tmp_path, PRICE_AUDIT, rotate="size", max_bytes=2_000, keep=3)
    for number in range(400):
        log.append([{"n": number, "customer_id": f"C{number}"}])
    files = log_files(tmp_path, PRICE_AUDIT)
    assert len(files) == 4  # the live file and the 3 newest rotated ones
    assert all(path.stat().st_size < 2_000 + 100 for path in files)
    kept = [int(line.split(":")[1].split(",")[0]) for path in files for line in path.read_text().splitlines()]
    assert kept == list(range(kept[0], 400))  # the newest lines, in order, none lost in between


def test_a_new_utc_day_starts_a_new_file(tmp_path: Path) -> None:
    log = JsonLines(tmp_path, PRICE_AUDIT, rotate="day", max_bytes=10, keep=5)
    log.append([{"n": 1}])
    log.append([{"n": 2}])  # the same day: one file, whatever its size
    assert len(log_files(tmp_path, PRICE_AUDIT)) == 1
    log._day = "2000-01-01"  # the file was opened on another day
    log.append([{"n": 3}])
    files = log_files(tmp_path, PRICE_AUDIT)
    assert len(files) == 2
    assert [bool(ROTATED.search(path.name)) for path in files] == [True, False]
    assert files[0].read_text().count("\n") == 2


def append_many(logs: str, tag: str, count: int) -> None:
    log = JsonLines(Path(logs), PRICE_AUDIT, max_bytes=20_000, keep=1000)
    for number in range(count):
        log.append([{"who": tag, "n": number, "pad": "x" * 50}])


def test_each_process_writes_its_own_file_and_no_line_is_torn(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=append_many, args=(str(tmp_path), tag, 2000)) for tag in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    files = log_files(tmp_path, PRICE_AUDIT)
    by_file: dict[str, set[str]] = {}
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for path in files:
        owner = path.name.split(".")[1].rsplit("-", 1)[1]  # the pid in the name
        for line in path.read_text().splitlines():
            row = json.loads(line)  # a torn or interleaved line would not parse
            by_file.setdefault(owner, set()).add(row["who"])
            seen[row["who"]].append(row["n"])
    assert all(len(writers) == 1 for writers in by_file.values())  # one process per file
    assert sorted(seen["a"]) == sorted(seen["b"]) == list(range(2000))
    assert any(ROTATED.search(path.name) for path in files)


@pytest.mark.parametrize("keep", [0, 2])
def test_retention_counts_every_workers_rotated_files(tmp_path: Path, keep: int) -> None:
    other = tmp_path / f"{PRICE_AUDIT}.otherhost-999.20000101T000000.000000.jsonl"
    other.write_text('{"n": -1}\n')  # a rotated file of another worker, the oldest
    log = JsonLines(tmp_path, PRICE_AUDIT, max_bytes=200, keep=keep)
    for number in range(40):
        log.append([{"n": number, "pad": "y" * 60}])
    rotated = [path for path in log_files(tmp_path, PRICE_AUDIT) if ROTATED.search(path.name)]
    assert len(rotated) == keep
    assert not other.exists()
