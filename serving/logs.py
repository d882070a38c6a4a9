"""Append-only JSON-lines logs of the service: the price audit and the feedback log.

One line per record, written with a single `write` under a lock, so concurrent requests in
a worker never interleave lines. Only pseudonymous ids go in (no names, no contact data).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

# one encoder for every line: json.dumps with options builds a new one per call
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
PRICE_AUDIT = "price_audit.jsonl"
FEEDBACK = "feedback.jsonl"


class JsonLines:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        text = "".join(_ENCODER.encode(record) + "\n" for record in records)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
