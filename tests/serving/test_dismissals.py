"""The dismissals every worker reads: another process's appends, whole lines only, and a
file rewritten under it (an erasure) read again from the start."""

from __future__ import annotations

import json
import os
from pathlib import Path

from serving.dismissals import Dismissals
from serving.logs import JsonLines
from storewise.service_logs import DISMISSALS


def line(customer: str, item: str) -> str:
    return json.dumps({"at": "2026-11-01T10:00:00+0800", "customer_id": customer, "item_id": item}) + "\n"


def test_readers_see_every_processs_file_incrementally_and_rewrites(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    writer = JsonLines(logs, DISMISSALS, keep=10**9)
    reader = Dismissals(logs)
    assert reader.of("ann") == []
    writer.append([{"at": "x", "customer_id": "ann", "item_id": "A"}])
    assert reader.of("ann") == ["A"]
    other = logs / f"{DISMISSALS}.otherhost-1.jsonl"  # another replica's worker
    other.write_text(line("ann", "B") + line("bob", "C") + '{"customer_id": "ann", "item')
    assert reader.of("ann") == ["A", "B"], "a line still being written is not read yet"
    with other.open("a") as handle:
        handle.write('_id": "D"}\n')
    assert reader.of("ann") == ["A", "B", "D"]
    assert reader.of("bob") == ["C"]
    # an erasure of bob: the file rewritten without his lines and swapped in
    staged = other.with_name(".staged")
    staged.write_text(line("ann", "B") + '{"customer_id": "ann", "item_id": "D"}\n')
    os.replace(staged, other)
    assert reader.of("bob") == []
    assert reader.of("ann") == ["A", "B", "D"]
    assert Dismissals(logs).of("ann") == ["A", "B", "D"], "a new reader (a restart) sees the same"
