"""Benchmark: the HTTP service under load (wrk on the same machine), memory, and a soak.

Needs trained and promoted champions for the shop (see benchmarks/README.md). For each
endpoint (noop, recommend, price, quote) and concurrency (1, 8, 32): p50, p99, max and
requests/s; the worker processes' memory before and after; the in-process time of the
recommender and of the endpoint method; `--rounds` back-to-back no-op / recommend runs at
concurrency 8 for the throughput ratio (median); then a soak of exactly 50,000 `recommend`
requests at concurrency 8 (memory growth, slowest request); for each `--workers` count
(one server each; some VMs are slow when two processes accept on one socket, so both 1
and 2 are worth measuring). In process, the price audit log's bytes per million
recommendations. With `--compare-fix`
the no-op endpoint and the soak are also run with BentoML's stock TimeoutMiddleware
(`STOREWISE_BENTOML_FIX=0`), so the fix's effect is a ratio within one run.

    MLFLOW_TRACKING_URI=sqlite:////path/mlflow.db uv run python -m benchmarks.bench_service --shop-dir DIR [--workers 1 2] [--compare-fix]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from storewise.service_logs import PRICE_AUDIT, log_files

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "service.json"
LUA = HERE / "wrk" / "post.lua"
BIN = Path(sys.executable).parent
ADMIN_TOKEN = secrets.token_urlsafe(24)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(
    shop: Path, workers: int, fix: bool, home: Path, code: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`bentoml serve` of the service in this checkout, or in `code` (another checkout of
    the repository: its `serving/` is imported first)."""
    port = free_port()
    env = {
        **os.environ,
        "STOREWISE_SHOP_DIR": str(shop),
        "STOREWISE_WORKERS": str(workers),
        "BENTOML_HOME": str(home),
        "OMP_NUM_THREADS": "1",
        "STOREWISE_BENTOML_FIX": "1" if fix else "0",
        "STOREWISE_RELOAD_SECONDS": "3600",
        "STOREWISE_ADMIN_TOKEN": ADMIN_TOKEN,  # /noop is an admin endpoint
        # the default rotation (100 MB files), few kept: the runs write gigabytes
        "STOREWISE_LOG_KEEP": "2",
    }
    process = subprocess.Popen(
        [
            str(BIN / "bentoml"),
            "serve",
            "serving.service:Storewise",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=code,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(1)
    raise RuntimeError("server did not start")


def worker_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """Resident memory of the server and every process under it (workers start their own
    sessions, so the tree is followed by parent pid)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        pid = int(status.parent.name)
        parent = re.search(r"PPid:\s+(\d+)", text)
        memory = re.search(r"VmRSS:\s+(\d+)", text)
        parents[pid] = int(parent.group(1)) if parent else 0
        rss[pid] = int(memory.group(1)) if memory else 0
    tree, frontier = {process.pid}, [process.pid]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in tree) / 1024


def parse_wrk(output: str) -> dict[str, float]:
    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]

    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for label, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        # anchored to the line's start: "85.50%" on the Latency line also ends in "50%"
        result[key] = ms(re.search(rf"^\s*{re.escape(label)}\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    result["max_ms"] = ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    result["requests"] = float(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return result


def wrk(
    url: str,
    endpoint: str,
    template: str,
    ids: Path,
    connections: int,
    seconds: int,
    max_requests: int | None = None,
) -> dict[str, float]:
    threads = min(connections, 2)
    env = {
        **os.environ,
        "IDS_FILE": str(ids),
        "TEMPLATE": template,
        "ENDPOINT": endpoint,
        "ADMIN_TOKEN": ADMIN_TOKEN,
    }
    command = [
        "wrk",
        "-d",
        f"{seconds}s",
        f"-t{threads}",
        f"-c{connections}",
        "--latency",
        "-s",
        str(LUA),
        url,
    ]
    if not max_requests:
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    else:
        done = Path(tempfile.mkdtemp(prefix="wrk-done-", dir=ids.parent))
        env.update({"MAX_REQUESTS_PER_THREAD": str(max_requests // threads), "DONE_DIR": str(done)})
        running = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        # the threads stop at their count; wrk's main thread would sleep out -d, so it is
        # interrupted (it then joins the threads and prints its report as usual)
        while running.poll() is None and len(list(done.iterdir())) < threads:
            time.sleep(0.2)
        running.send_signal(signal.SIGINT)
        output = running.communicate(timeout=60)[0]
    try:
        return parse_wrk(output)
    except (AttributeError, KeyError) as error:
        raise RuntimeError(f"could not read wrk's output:\n{output}") from error


ENDPOINTS = {
    "noop": ("/noop", "{}"),
    "recommend": ("/recommend", '{"customer_id": "%s", "k": 10}'),
    "price": ("/price", '{"item_ids": ["%s"]}'),
    "quote": ("/quote", '{"customer_id": "C0000001", "cart": [{"item_id": "%s", "quantity": 1}]}'),
}


def run_now(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The result of an async endpoint that never awaits, without an event loop's cost."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the endpoint awaited something")


def in_process(shop: Path, customers: list[str]) -> dict[str, float]:
    """Median time of the recommender alone and of the whole `recommend` endpoint method
    (pricing, loyalty, audit log, response objects), called in this process: the HTTP
    overhead is what the served figures add to these."""
    os.environ["STOREWISE_SHOP_DIR"] = str(shop)
    os.environ["STOREWISE_RELOAD_SECONDS"] = "3600"
    os.environ["STOREWISE_LOG_KEEP"] = "2"
    from serving.service import Storewise

    service = Storewise.inner()  # type: ignore[attr-defined]
    endpoint = Storewise.apis["recommend"].func  # type: ignore[attr-defined]
    recommendations = service.state.current.recommendations

    def median_ms(call: Callable[[str], object]) -> float:
        for customer in customers[:100]:
            call(customer)
        times = []
        for customer in customers:
            started = time.perf_counter()
            call(customer)
            times.append(time.perf_counter() - started)
        return round(statistics.median(times) * 1000, 4)

    result = {
        "recommender_ms": median_ms(lambda customer: recommendations.recommend(customer, 10)),
        "endpoint_method_ms": median_ms(
            lambda customer: run_now(endpoint(service, customer_id=customer, k=10))
        ),
        "customers": float(len(customers)),
    }
    # the audit log's cost: bytes written per million `recommend` answers (k=10, one line
    # per item priced), measured on these customers' answers
    before = audit_bytes(shop)
    for customer in customers:
        run_now(endpoint(service, customer_id=customer, k=10))
    written = audit_bytes(shop) - before
    result["audit_bytes_per_recommendation"] = round(written / len(customers), 1)
    result["audit_gb_per_million_recommendations"] = round(written / len(customers) * 1e6 / 1e9, 3)
    return result


def audit_bytes(shop: Path) -> int:
    """Bytes in the price audit log's files (every worker's, live and rotated)."""
    return sum(path.stat().st_size for path in log_files(shop / "logs", PRICE_AUDIT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shop-dir", type=Path, required=True)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="alternating no-op / recommend runs at c=8")
    parser.add_argument("--soak-requests", type=int, default=50_000)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2], help="worker counts to measure, one server each"
    )
    parser.add_argument("--compare-fix", action="store_true")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. `git worktree add /tmp/base main`): its service and this one, "
        "2 workers each, recommend and no-op at c=8 in alternating rounds",
    )
    parser.add_argument(
        "--baseline-only",
        action="store_true",
        help="run only the --baseline comparison and add it to the results file",
    )
    return parser.parse_args()


def write_ids(shop: Path, work: Path) -> tuple[dict[str, Path], list[str]]:
    """The id files wrk picks from (5,000 customers, 2,000 items) and the customers."""
    customers = (
        pd.read_parquet(shop / "features" / "interactions.parquet")["customer_id"]
        .drop_duplicates()
        .sample(5000, random_state=1)
    )
    items = pd.read_parquet(shop / "raw" / "products.parquet")["item_id"].sample(2000, random_state=1)
    (work / "customers.txt").write_text("\n".join(customers) + "\n")
    (work / "items.txt").write_text("\n".join(items) + "\n")
    ids = {
        "noop": work / "items.txt",
        "recommend": work / "customers.txt",
        "price": work / "items.txt",
        "quote": work / "items.txt",
    }
    return ids, list(customers)


def grid(url: str, ids: dict[str, Path], seconds: int) -> dict[str, dict[str, float]]:
    """Every endpoint at concurrency 1, 8 and 32, each after a 3 s warm-up."""
    runs = {}
    for name, (endpoint, template) in ENDPOINTS.items():
        for connections in (1, 8, 32):
            wrk(url, endpoint, template, ids[name], connections, seconds=3)  # warm-up
            runs[f"{name}@c{connections}"] = wrk(
                url, endpoint, template, ids[name], connections, seconds=seconds
            )
            print(name, connections, runs[f"{name}@c{connections}"], flush=True)
    return runs


def rounds_at_c8(url: str, ids: dict[str, Path], seconds: int, count: int) -> dict[str, object]:
    """The machine's speed drifts by 2x within minutes: the recommend / no-op ratio is taken
    from back-to-back runs, several times, and the median quoted."""
    rounds = []
    for _ in range(count):
        noop = wrk(url, "/noop", "{}", ids["noop"], 8, seconds=seconds)
        recommend = wrk(url, "/recommend", ENDPOINTS["recommend"][1], ids["recommend"], 8, seconds=seconds)
        rounds.append(
            {
                "noop_rps": noop["rps"],
                "recommend_rps": recommend["rps"],
                "recommend_p99_ms": recommend["p99_ms"],
                "ratio": round(recommend["rps"] / noop["rps"], 3),
            }
        )
        print("round", rounds[-1], flush=True)
    return {
        "rounds": rounds,
        **{
            f"median_{key}": statistics.median(row[key] for row in rounds)  # type: ignore[misc]
            for key in ("noop_rps", "recommend_rps", "recommend_p99_ms", "ratio")
        },
    }


def measure_served(
    shop: Path, workers: int, args: argparse.Namespace, ids: dict[str, Path], work: Path
) -> dict[str, object]:
    """One server with `workers` workers: the grid, the rounds, the soak, memory."""
    process, url = start(shop, workers, True, work / "bentoml")
    result: dict[str, object] = {"workers": workers}
    try:
        result["rss_mb_at_start"] = worker_rss_mb(process)
        result["runs"] = grid(url, ids, args.seconds)
        result["rss_mb_after_runs"] = worker_rss_mb(process)
        result["recommend_vs_noop_at_c8"] = rounds_at_c8(url, ids, args.seconds, args.rounds)
        result["soak"] = soak(url, ids["recommend"], args.soak_requests, process)
        print("soak", result["soak"], flush=True)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    return result


def stock_bentoml(
    shop: Path, args: argparse.Namespace, ids: dict[str, Path], work: Path
) -> dict[str, object]:
    """The no-op and the soak with BentoML's own TimeoutMiddleware (2 workers)."""
    process, url = start(shop, 2, False, work / "bentoml")
    try:
        stock: dict[str, object] = {}
        for connections in (1, 8):
            wrk(url, "/noop", "{}", ids["noop"], connections, seconds=3)
            stock[f"noop@c{connections}"] = wrk(
                url, "/noop", "{}", ids["noop"], connections, seconds=args.seconds
            )
        stock["soak"] = soak(url, ids["recommend"], args.soak_requests, process)
        print("without fix", stock, flush=True)
        return stock
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


# run in another checkout's directory: its own benchmarks/ and serving/ are imported
IN_PROCESS = (
    "import json, sys; from pathlib import Path; from benchmarks.bench_service import in_process; "
    "print('RESULT', json.dumps(in_process(Path(sys.argv[1]), sys.argv[2].split(','))))"
)


def in_process_of(code: Path | None, shop: Path, customers: list[str]) -> dict[str, float]:
    """`in_process` of this checkout or of `code`, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(shop), ",".join(customers)],
        cwd=code,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))  # type: ignore[no-any-return]


def versus_baseline(
    shop: Path, args: argparse.Namespace, ids: dict[str, Path], customers: list[str], work: Path
) -> dict[str, object]:
    """This checkout's service against another's on the same machine, minutes apart at most:
    per round, no-op and recommend at c=8 on each; the ratios of this one to the baseline."""
    mine, mine_url = start(shop, 2, True, work / "bentoml")
    base, base_url = start(shop, 2, True, work / "bentoml-baseline", code=args.baseline.resolve())
    rounds = []
    try:
        for _ in range(args.rounds):
            row = {}
            for label, url in (("this", mine_url), ("baseline", base_url)):
                for name in ("noop", "recommend"):
                    endpoint, template = ENDPOINTS[name]
                    row[f"{label}_{name}_rps"] = wrk(
                        url, endpoint, template, ids[name], 8, seconds=args.seconds
                    )["rps"]
            row["recommend_ratio"] = round(row["this_recommend_rps"] / row["baseline_recommend_rps"], 3)
            row["noop_ratio"] = round(row["this_noop_rps"] / row["baseline_noop_rps"], 3)
            rounds.append(row)
            print("versus baseline", row, flush=True)
    finally:
        for process in (mine, base):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
    in_process_rounds = []
    for _ in range(args.rounds):  # the endpoint method alone, each checkout in its own process
        baseline_ms = in_process_of(args.baseline.resolve(), shop, customers)["endpoint_method_ms"]
        this_ms = in_process_of(None, shop, customers)["endpoint_method_ms"]
        in_process_rounds.append(
            {"baseline_ms": baseline_ms, "this_ms": this_ms, "ratio": round(this_ms / baseline_ms, 3)}
        )
        print("in process versus baseline", in_process_rounds[-1], flush=True)
    return {
        "baseline": str(args.baseline),
        "in_process_rounds": in_process_rounds,
        "median_in_process_ratio": statistics.median(row["ratio"] for row in in_process_rounds),
        "rounds": rounds,
        "median_recommend_ratio": statistics.median(row["recommend_ratio"] for row in rounds),
        "median_noop_ratio": statistics.median(row["noop_ratio"] for row in rounds),
    }


def main() -> None:
    args = parse_args()
    shop = args.shop_dir.resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-service-"))
    try:
        ids, customers = write_ids(shop, work)
        if args.baseline_only:
            results = json.loads(RESULTS.read_text(encoding="utf-8"))
            results["versus_baseline"] = versus_baseline(shop, args, ids, customers[:2000], work)
        else:
            results = measure_all(shop, args, ids, customers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")


def measure_all(
    shop: Path, args: argparse.Namespace, ids: dict[str, Path], customers: list[str], work: Path
) -> dict[str, object]:
    results: dict[str, object] = {
        "command": "uv run python -m benchmarks.bench_service --shop-dir DIR --workers "
        + " ".join(map(str, args.workers))
        + (" --compare-fix" if args.compare_fix else "")
        + (f" --baseline {args.baseline}" if args.baseline else ""),
        "date": time.strftime("%Y-%m-%d"),
        "seconds_per_run": args.seconds,
    }
    results["in_process"] = in_process(shop, customers[:2000])
    print("in process", results["in_process"], flush=True)
    results["served"] = [measure_served(shop, workers, args, ids, work) for workers in args.workers]
    if args.compare_fix:
        results["stock_bentoml_without_fix"] = stock_bentoml(shop, args, ids, work)
    if args.baseline:
        results["versus_baseline"] = versus_baseline(shop, args, ids, customers[:2000], work)
    return results


def soak(url: str, customers: Path, requests: int, process: subprocess.Popen[bytes]) -> dict[str, float]:
    """Exactly `requests` recommend calls at concurrency 8: worker memory before and after,
    the slowest request."""
    before = worker_rss_mb(process)
    started = time.perf_counter()
    result = wrk(
        url, "/recommend", ENDPOINTS["recommend"][1], customers, 8, seconds=600, max_requests=requests
    )
    return {
        **result,
        "rss_mb_before": before,
        "rss_mb_after": worker_rss_mb(process),
        "seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    main()
