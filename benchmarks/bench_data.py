"""Benchmark: demo-shop generation and online-retail import.

Each case runs in its own process (so peak memory is that case's own), several times;
the medians go to benchmarks/results/data.json and the table in benchmarks/README.md.

    uv run python -m benchmarks.bench_data [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.measure import peak_rss_mb

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "data.json"
SAMPLE = HERE.parent.parent / "shared" / "data" / "online-retail-sample.csv.gz"


def case_generate(customers: int, products: int, work: Path) -> dict[str, float]:
    from intake.demo.generate import GeneratorSettings, generate_shop
    from intake.demo.writer import write_generated_shop
    from storewise import columns as c
    from storewise.shop import ShopPaths

    started = time.perf_counter()
    generated = generate_shop(GeneratorSettings(customers=customers, products=products))
    generated_at = time.perf_counter()
    write_generated_shop(ShopPaths(work / "shop"), generated)
    written_at = time.perf_counter()
    events = len(generated.tables[c.EVENTS])
    order_lines = len(generated.tables[c.ORDERS])
    return {
        "generate_s": generated_at - started,
        "write_s": written_at - generated_at,
        "total_s": written_at - started,
        "events": events,
        "order_lines": order_lines,
        "interactions": events + order_lines,
    }


def case_import(path: Path, work: Path) -> dict[str, float]:
    from intake.importers.common import Consent, write_import
    from intake.importers.online_retail import import_online_retail
    from storewise.shop import ShopPaths

    started = time.perf_counter()
    result = import_online_retail(path, consent=Consent.PERSONALIZATION)
    imported_at = time.perf_counter()
    write_import(ShopPaths(work / "shop"), result)
    written_at = time.perf_counter()
    rows = int(result.summary["rows read"])  # type: ignore[call-overload]
    return {
        "import_s": imported_at - started,
        "total_s": written_at - started,
        "rows": rows,
        "rows_per_s": rows / (written_at - started),
    }


def run_case(name: str, work: Path) -> dict[str, float]:
    if name == "generate-large":
        result = case_generate(100_000, 20_000, work)
    elif name == "generate-default":
        from intake.demo.generate import GeneratorSettings

        default = GeneratorSettings()
        result = case_generate(default.customers, default.products, work)
    elif name == "import-sample":
        result = case_import(SAMPLE, work)
    elif name == "import-5x-sample":
        big = work / "five_times.csv.gz"
        frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
        pd.concat([frame] * 5, ignore_index=True).to_csv(big, index=False)
        result = case_import(big, work)
    else:
        raise SystemExit(f"unknown case {name}")
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        with tempfile.TemporaryDirectory() as work:
            print(json.dumps(run_case(args.case, Path(work))))
        return

    cases = ["generate-default", "generate-large", "import-sample", "import-5x-sample"]
    results: dict[str, object] = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "repeats": args.repeats,
        "command": "uv run python -m benchmarks.bench_data --repeats " + str(args.repeats),
        "date": time.strftime("%Y-%m-%d"),
    }
    for case in cases:
        runs = []
        for _ in range(args.repeats):
            output = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_data", "--case", case],
                capture_output=True,
                text=True,
                check=True,
                cwd=HERE.parent,
            ).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
        medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        results[case] = {"median": medians, "runs": runs}
        print(case, json.dumps({k: round(v, 2) for k, v in medians.items()}), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
