"""Append-only JSON-lines logs of the service: the price audit and the feedback log.

- **One file per worker process**: `<shop>/logs/<log>.<host>-<pid>.jsonl`, so lines of two
  processes (or two hosts sharing the shop directory) never interleave; inside a process a
  request's lines are one `write` under a lock.
- **Rotation with retention**: when the file passes `log_max_mb` (or, with
  `log_rotate: day`, when the UTC day changes) it is renamed to
  `<log>.<host>-<pid>.<UTC time>.jsonl` and a new one is started; of the rotated files of a
  log (all workers together) the newest `log_keep` are kept. Readers take every
  `<log>*.jsonl` (`log_files`).
- **Erasure-safe**: every append holds a shared `flock` on `<shop>/logs/.lock`; `storewise
  erase` holds it exclusively while it swaps in rewritten files, and an append that finds
  its file replaced reopens it, so no line written meanwhile is lost. (The layout and the
  lock are in `storewise/service_logs.py`, shared with erasure and the reports.)
- **A write that fails raises `LogWriteError`** (a full disk, say): the caller decides (the
  service refuses to give a price it cannot audit).

Only pseudonymous ids go in (no names, no contact data).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from pathlib import Path
from typing import IO, Any, Literal

from storewise.service_logs import FEEDBACK, LOCK, PRICE_AUDIT, ROTATED, log_files, process_tag

__all__ = ["FEEDBACK", "PRICE_AUDIT", "JsonLines", "LogWriteError"]
# one encoder for every line: json.dumps with options builds a new one per call
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


class LogWriteError(OSError):
    """A log line could not be written (the message says which log and why)."""


class JsonLines:
    """One worker process's file of a log, rotated and pruned as it grows."""

    def __init__(
        self,
        logs: Path,
        name: str,
        *,
        rotate: Literal["size", "day"] = "size",
        max_bytes: int = 100 * 2**20,
        keep: int = 20,
    ) -> None:
        self.logs, self.name = logs, name
        self.rotate, self.max_bytes, self.keep = rotate, max_bytes, keep
        self.logs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._handle: IO[str] | None = None
        self._day = ""
        self._lock_fd = os.open(self.logs / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        self.failures = 0
        self.last_failure: str | None = None
        self._pid, self._path = 0, self.logs

    @property
    def path(self) -> Path:
        """This process's live file (a forked process gets its own)."""
        if self._pid != os.getpid():
            self._pid, self._path = os.getpid(), self.logs / f"{self.name}.{process_tag()}.jsonl"
        return self._path

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        text = "".join(_ENCODER.encode(record) + "\n" for record in records)
        with self._lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
            try:
                self._write(text)
            except OSError as error:
                self.failures += 1
                self.last_failure = f"{self.name} log {self.path}: {error.strerror or error}"
                self._close()
                raise LogWriteError(self.last_failure) from None
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self.last_failure = None

    def _write(self, text: str) -> None:
        handle = self._open()
        if self._due(handle):
            self._roll()
            handle = self._open()
        handle.write(text)
        handle.flush()

    def _open(self) -> IO[str]:
        """The open file, reopened when it was replaced (erasure) or removed under us."""
        path = self.path
        if self._handle is not None:
            try:
                same = os.stat(path).st_ino == os.fstat(self._handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same and self._handle.name == str(path):
                return self._handle
            self._close()
        self._handle = path.open("a", encoding="utf-8")
        self._day = time.strftime("%Y-%m-%d", time.gmtime())
        return self._handle

    def _due(self, handle: IO[str]) -> bool:
        if self.rotate == "day":
            return time.strftime("%Y-%m-%d", time.gmtime()) != self._day and handle.tell() > 0
        return handle.tell() >= self.max_bytes

    def _roll(self) -> None:
        """Rename the full file aside (the next write starts a new one) and delete the
        oldest rotated files beyond `keep`."""
        self._close()
        live = self.path
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.6f}"[1:]
        live.rename(live.with_name(f"{live.stem}.{stamp}.jsonl"))
        rotated = [path for path in log_files(self.logs, self.name) if ROTATED.search(path.name)]
        for old in rotated[: max(0, len(rotated) - self.keep)]:
            old.unlink(missing_ok=True)  # another worker may have pruned it first

    def _close(self) -> None:
        if self._handle is not None:
            # a write that failed (disk full) may fail again on close: the data is gone either way
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
