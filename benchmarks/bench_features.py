"""Benchmark: `features build` on the large demo shop (~1M interactions).

Generates the shop once (100,000 customers, 20,000 products, 365 days), then times a full
build (--force) and a no-op rebuild (unchanged inputs), each in a fresh process so peak
memory is the build's own. Medians go to benchmarks/results/features.json.

    uv run python -m benchmarks.bench_features [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import peak_rss_mb

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "features.json"


def one_build(shop_dir: str, force: bool) -> dict[str, object]:
    from features.pipeline import build_features
    from storewise.shop import ShopPaths

    started = time.perf_counter()
    result = build_features(ShopPaths(Path(shop_dir)), force=force)
    elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "rebuilt": result.rebuilt,
        "step_seconds": result.manifest["step_seconds"],
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build", help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        print(json.dumps(one_build(args.build, args.force)))
        return

    from intake.demo.generate import GeneratorSettings, generate_shop
    from intake.demo.writer import write_generated_shop
    from storewise import columns as c
    from storewise.shop import ShopPaths

    with tempfile.TemporaryDirectory() as work:
        shop = ShopPaths(Path(work) / "large")
        generated = generate_shop(GeneratorSettings(customers=100_000, products=20_000))
        interactions = len(generated.tables[c.EVENTS]) + len(generated.tables[c.ORDERS])
        write_generated_shop(shop, generated)
        del generated
        results: dict[str, object] = {
            "command": f"uv run python -m benchmarks.bench_features --repeats {args.repeats}",
            "date": time.strftime("%Y-%m-%d"),
            "shop": {"customers": 100_000, "products": 20_000, "days": 365, "interactions": interactions},
        }
        for case, force in (("full build", True), ("no-op rebuild", False)):
            runs = []
            for _ in range(args.repeats):
                command = [sys.executable, "-m", "benchmarks.bench_features", "--build", str(shop.root)] + (
                    ["--force"] if force else []
                )
                output = subprocess.run(
                    command, capture_output=True, text=True, check=True, cwd=HERE.parent
                ).stdout
                runs.append(json.loads(output.strip().splitlines()[-1]))
            median = {
                "seconds": statistics.median(float(run["seconds"]) for run in runs),
                "peak_rss_mb": statistics.median(float(run["peak_rss_mb"]) for run in runs),
            }
            results[case] = {"median": median, "runs": runs}
            print(case, json.dumps({k: round(v, 2) for k, v in median.items()}), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
