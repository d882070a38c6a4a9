"""What each customer said "not interested" in, as every worker and replica sees it.

A `dismiss` feedback event is appended to the `dismissals` log (`<shop>/logs/
dismissals.<host>-<pid>.jsonl`, one file per process, never pruned: storewise/service_logs.py)
before the feedback is acknowledged. Any worker, of any replica sharing the shop directory,
reads every process's file before it recommends: a stat of the log directory and of each
dismissals file per request, and only the bytes appended since its last look. A file that
was replaced or shrank (an erasure rewrote it) is read again from the start. So a
dismissal holds from the next `recommend` on, whichever worker answers, and survives
restarts: it lives in the files, not in a process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from storewise.service_logs import DISMISSALS, log_files

log = logging.getLogger("storewise.serving")


class Dismissals:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._lock = threading.Lock()
        self._by_customer: dict[str, dict[str, None]] = {}
        self._read: dict[Path, tuple[int, int]] = {}  # file -> (inode, bytes read)
        self._files: list[Path] = []
        self._directory_stamp: int | None = None

    def of(self, customer_id: str) -> list[str]:
        """The items this customer dismissed, oldest first."""
        with self._lock:
            self._refresh()
            return list(self._by_customer.get(customer_id, ()))

    def _refresh(self) -> None:
        try:
            stamp = os.stat(self.logs).st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self._directory_stamp:  # a file was added, renamed or removed
            self._files = log_files(self.logs, DISMISSALS)
            self._directory_stamp = stamp
        for path in self._files:
            try:
                status = os.stat(path)
            except FileNotFoundError:  # renamed or removed since the listing: list again next time
                self._directory_stamp = None
                continue
            inode, done = self._read.get(path, (status.st_ino, 0))
            if inode != status.st_ino or status.st_size < done:
                self._rebuild()
                return
            if status.st_size > done:
                self._read[path] = (inode, done + self._read_from(path, done))

    def _rebuild(self) -> None:
        """An erasure rewrote a file: forget everything and read every file again."""
        self._by_customer.clear()
        self._read.clear()
        self._files = log_files(self.logs, DISMISSALS)
        for path in self._files:
            try:
                inode = os.stat(path).st_ino
            except FileNotFoundError:
                continue
            self._read[path] = (inode, self._read_from(path, 0))

    def _read_from(self, path: Path, offset: int) -> int:
        """Read the whole lines after `offset`; the number of bytes consumed."""
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        except FileNotFoundError:
            return 0
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written is read next time
        for line in complete.splitlines():
            try:
                record = json.loads(line)
                customer, item = str(record["customer_id"]), str(record["item_id"])
            except (ValueError, KeyError, TypeError):
                log.warning("skipping an unreadable line in %s", path)
                continue
            self._by_customer.setdefault(customer, {})[item] = None
        return len(complete)
