"""Benchmark: `make demo` on a fresh clone, to its first answer.

Run it in a clone whose `make install` has finished (the clock starts after the install,
as the issue's bar does): it starts `make demo`, stamps every line the demo prints with the
seconds since the start, asks `POST /recommend` every half second once the demo serves, and
stops the demo at the first answer. The time to that answer, each step's share (from the
stamped lines where make echoes a step's command) and every warning line the demo printed
go to benchmarks/results/demo.json.

    git clone . /tmp/demo-clone && cd /tmp/demo-clone && make install
    python -m benchmarks.bench_demo --clone /tmp/demo-clone --port 9170
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "demo.json"
STEP = re.compile(r"storewise (data generate|data check|features build|train \w+|promote|serve)")
WARNING = re.compile(r"warn", re.IGNORECASE)


def stamp_lines(stream: object, started: float, lines: list[tuple[float, str]]) -> None:
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        text = raw.decode(errors="replace").rstrip().split("\r")[-1]  # a progress bar's last state
        lines.append((round(time.perf_counter() - started, 2), text))


def first_answer(url: str, process: subprocess.Popen[bytes], timeout: float) -> dict[str, object] | None:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            response = httpx.post(url, json={"customer_id": None, "k": 5}, timeout=5)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return None


def step_seconds(lines: list[tuple[float, str]], answered: float) -> dict[str, float]:
    """Each step's seconds: from the line make echoes for it to the next step's."""
    starts = [
        (at, match.group(1))
        for at, line in lines
        if line.startswith(".uv/bin/uv run") and (match := STEP.search(line))
    ]
    ends = [at for at, _ in starts[1:]] + [answered]
    steps: dict[str, float] = {}
    for (at, name), end in zip(starts, ends, strict=True):
        steps[name] = round(steps.get(name, 0.0) + end - at, 2)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clone", type=Path, required=True, help="A fresh clone after `make install`.")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    lines: list[tuple[float, str]] = []
    load_at_start = [round(load, 2) for load in os.getloadavg()]
    started = time.perf_counter()
    process = subprocess.Popen(
        ["make", "demo", f"PORT={args.port}"],
        cwd=args.clone,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    reader = threading.Thread(target=stamp_lines, args=(process.stdout, started, lines), daemon=True)
    reader.start()
    answer = first_answer(f"http://127.0.0.1:{args.port}/recommend", process, args.timeout)
    answered = round(time.perf_counter() - started, 2)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)
    reader.join(timeout=10)
    results = {
        "command": f"python -m benchmarks.bench_demo --clone {args.clone} --port {args.port}",
        "date": time.strftime("%Y-%m-%d"),
        # what else decides the figure: the machine's load when the demo started, and whether
        # the interpreters could write bytecode (`make install` compiles the libraries' anyway)
        "load_average_at_start": load_at_start,
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "answered": answer is not None,
        "make_exit_code": process.returncode,
        "seconds_to_first_answer": answered,
        "step_seconds": step_seconds(lines, answered),
        "warning_lines": [line for _, line in lines if WARNING.search(line)],
        "first_answer": answer,
        "output": [f"{at:8.2f} {line}" for at, line in lines],
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps({key: results[key] for key in ("answered", "seconds_to_first_answer", "step_seconds")}))
    print(f"{len(results['warning_lines'])} warning line(s); wrote {RESULTS}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
