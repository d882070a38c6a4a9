"""Where the service's logs are and the lock their writers honour (read by the service,
`storewise erase` and `storewise report feedback`, which may not import `serving/`).

A log (`price_audit`, `feedback`, `dismissals`) is several files in `<shop>/logs/`: one live file per
worker process, `<log>.<host>-<pid>.jsonl`, and the rotated ones,
`<log>.<host>-<pid>.<UTC time>.jsonl` (and `<log>.jsonl` from versions before rotation).
Every append holds a shared `flock` on `<shop>/logs/.lock`; a rewrite (erasure) holds it
exclusively and swaps whole files in, and a writer that finds its file replaced reopens it.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRICE_AUDIT = "price_audit"
FEEDBACK = "feedback"
# "not interested" (feedback kind `dismiss`): kept for good (never pruned), read by every
# worker before it recommends and by the next training (features/interactions.py)
DISMISSALS = "dismissals"
LOGS = (PRICE_AUDIT, FEEDBACK, DISMISSALS)
LOCK = ".lock"
ROTATED = re.compile(r"\.\d{8}T\d{6}\.\d{6}\.jsonl$")


def process_tag() -> str:
    """`<host>-<pid>`: whose file a line is in (host names keep letters, digits, . and -)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def log_files(logs: Path, name: str) -> list[Path]:
    """Every file of log `name` in `logs`: live and rotated, of every process and host,
    oldest first by modification time."""
    if not logs.is_dir():
        return []
    found = []
    for path in logs.glob(f"{name}*.jsonl"):
        try:
            found.append((path.stat().st_mtime, path.name, path))
        except FileNotFoundError:  # pruned by a worker while we looked
            continue
    return [path for *_, path in sorted(item for item in found if item[2].name.split(".")[0] == name)]


@contextmanager
def logs_locked(logs: Path, *, exclusive: bool) -> Iterator[None]:
    """The lock every writer of the shop's logs honours: shared to append, exclusive to
    rewrite (erasure)."""
    logs.mkdir(parents=True, exist_ok=True)
    handle = os.open(logs / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(handle)  # closing releases the lock
