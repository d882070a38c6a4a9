"""Benchmark: the cost curve. `features build`, `train recommender` and `train pricing` at
1×, 3× and 10× the large demo shop, each step the real CLI in its own process.

The large demo shop is 100,000 customers and 20,000 products over 365 days (1.26 M
interactions); a scale multiplies the customers (the catalogue stays 20,000 items: a shop
grows by customers far faster than by products, and item × item work stays the same size,
so what grows is everything per customer or per interaction). Each step's wall time and
peak resident memory (`wait4`'s `ru_maxrss` of the child) are recorded; a step that runs
past `--timeout` or past `--memory-gib` resident is stopped and recorded as such, with the
tail of its stderr. The growth exponent of each step is the least-squares slope of
log(seconds) and log(peak RSS) against log(interactions). Results are merged into
benchmarks/results/scale.json after every step, so scales can be run one at a time.

    uv run python -m benchmarks.bench_scale --scales 1 3 10 [--timeout 1800 --memory-gib 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "scale.json"
LARGE_CUSTOMERS = 100_000
LARGE_PRODUCTS = 20_000
STEPS = {
    "generate": ["data", "generate"],
    "features build": ["features", "build", "--force"],
    "train recommender": ["train", "recommender"],
    "train pricing": ["train", "pricing"],
}


def resident_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def watch(process: subprocess.Popen[bytes], limit_mib: float, deadline: float, why: list[str]) -> None:
    """Stop the child's process group when it passes the memory bound or the deadline."""
    while process.poll() is None:
        if resident_mib(process.pid) > limit_mib:
            why.append(f"resident memory above {limit_mib / 1024:.0f} GiB")
        elif time.monotonic() > deadline:
            why.append("timeout")
        if why:
            os.killpg(process.pid, signal.SIGKILL)
            return
        time.sleep(0.5)


def run_step(
    command: list[str], env: dict[str, str], log: Path, timeout: float, limit_mib: float
) -> dict[str, object]:
    """One CLI step in a fresh process: wall seconds, peak RSS (MiB), exit code, and why it
    was stopped if it was."""
    started = time.perf_counter()
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=stderr, stderr=subprocess.STDOUT, start_new_session=True
        )
        why: list[str] = []
        watcher = threading.Thread(
            target=watch, args=(process, limit_mib, time.monotonic() + timeout, why), daemon=True
        )
        watcher.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        watcher.join()
    seconds = time.perf_counter() - started
    result: dict[str, object] = {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "exit_code": process.returncode,
    }
    if why or process.returncode != 0:
        result["stopped"] = why[0] if why else f"exit code {process.returncode}"
        result["output_tail"] = log.read_text(errors="replace")[-2000:]
    return result


def interactions(shop_dir: Path) -> int:
    import pyarrow.parquet as pq

    from storewise import columns as c
    from storewise.shop import ShopPaths

    shop = ShopPaths(shop_dir)
    return sum(int(pq.ParquetFile(shop.table(name)).metadata.num_rows) for name in (c.EVENTS, c.ORDERS))


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log y on log x: y grows as x to this power."""
    if len(points) < 2:
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return round(sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread, 3)


def exponents(scales: dict[str, dict[str, object]]) -> dict[str, dict[str, float | None]]:
    """Per step, the growth exponent of time and of peak RSS over the scales it finished."""
    growth: dict[str, dict[str, float | None]] = {}
    for step in STEPS:
        time_points, memory_points = [], []
        for scale in scales.values():
            done = scale.get("steps", {})
            assert isinstance(done, dict)
            measured = done.get(step)
            if isinstance(measured, dict) and "stopped" not in measured:
                size = float(scale["interactions"])  # type: ignore[arg-type]
                time_points.append((size, float(measured["seconds"])))
                memory_points.append((size, float(measured["peak_rss_mib"])))
        growth[step] = {"seconds": slope(time_points), "peak_rss": slope(memory_points)}
    return growth


def save(results: dict[str, object], path: Path) -> None:
    scales = results["scales"]
    assert isinstance(scales, dict)
    results["exponents"] = exponents(scales)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")


def run_scale(scale: int, args: argparse.Namespace, results: dict[str, object]) -> None:
    work = Path(args.work).resolve() / f"x{scale}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shop = work / "shop"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
    }
    scales = results["scales"]
    assert isinstance(scales, dict)
    customers = args.base_customers * scale
    previous = scales.get(str(scale), {})
    assert isinstance(previous, dict)
    # a skipped step keeps its earlier measurement (each measurement names its commit)
    kept = {
        step: {"commit": args.previous_commit, **value}
        for step, value in previous.get("steps", {}).items()
        if step in args.skip
    }
    record: dict[str, object] = {"customers": customers, "products": args.base_products, "steps": kept}
    scales[str(scale)] = record
    steps = record["steps"]
    assert isinstance(steps, dict)
    for step, verb in STEPS.items():
        if step in args.skip:
            continue
        command = [sys.executable, "-m", "cli", *verb, "--shop-dir", str(shop)]
        if step == "generate":
            command += ["--customers", str(customers), "--products", str(args.base_products)]
        log = work / f"{step.replace(' ', '-')}.log"
        measured = {
            **run_step(command, env, log, args.timeout, args.memory_gib * 1024),
            "commit": args.commit,
        }
        steps[step] = measured
        if step == "generate" and "stopped" not in measured:
            record["interactions"] = interactions(shop)
        print(
            f"{scale}x {step}: {json.dumps({k: v for k, v in measured.items() if k != 'output_tail'})}",
            flush=True,
        )
        save(results, args.results)
        if "stopped" in measured:
            break
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds a step may run.")
    parser.add_argument("--memory-gib", type=float, default=20, help="Resident memory a step may use.")
    parser.add_argument("--work", default=str(ROOT / "data" / "bench-scale"), help="Where the shops go.")
    parser.add_argument("--keep", action="store_true", help="Keep each scale's shop and store.")
    parser.add_argument("--base-customers", type=int, default=LARGE_CUSTOMERS, help="Customers at 1x.")
    parser.add_argument("--base-products", type=int, default=LARGE_PRODUCTS, help="Products at every scale.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="The JSON to merge results into.")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=[s for s in STEPS if s not in ("generate", "features build")],
        help="Training steps not run again: their earlier measurement stays in the results.",
    )
    args = parser.parse_args()
    results: dict[str, object] = (
        json.loads(args.results.read_text(encoding="utf-8")) if args.results.exists() else {"scales": {}}
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    args.commit = commit.stdout.strip()
    args.previous_commit = results.get("commit")  # of measurements made before steps named theirs
    results.update(
        {
            "command": "uv run python -m benchmarks.bench_scale " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"),
            "commit": commit.stdout.strip(),
            "machine": f"{os.cpu_count()} cores, {platform.python_version()}",
        }
    )
    for scale in args.scales:
        run_scale(scale, args, results)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
