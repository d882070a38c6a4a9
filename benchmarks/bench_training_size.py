"""Benchmark: how the hybrid's lead over the best peer changes with the number of customers
it learns from, on the same test customers (issue 14).

The unseen export the outside check trains on holds about four times the sample's
customers; the sets this repo can build are the sample and parts of it. A part's run (its
own shop, `bench_retail_cli --part N --parts K --split-seed S`) learns from fewer customers
than the whole sample's, so comparing a set's lead with the whole sample's mixes two
things: which customers are tested, and how many the models learned from. Here every test
customer is scored by the models of each size: the whole sample, the half of each seed that
holds them, the quarter of each seed that holds them (a seed's quarters lie inside its
halves). Per customer and size: the CLI's NDCG@10 (what a shop gets: `recommend --k 10`
from the model trained on the history only) minus the set's best peer's (trained on the
same shop), averaged over the seeds. The differences between sizes are paired over the
customers, with a bootstrap 90% interval.

    flock /tmp/storewise-cpu.lock uv run python -m benchmarks.bench_training_size --seeds 1 2 3 --work data/b14/size

Each set runs `bench_retail_cli` in its own folder under `--work` (about a minute a half on
2 cores); a folder that already holds a set's per-customer figures is read, not re-run.
Results: benchmarks/results/training_size.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.bench_retail_cli import PROTOCOLS
from training.recommender.uncertainty import paired_interval

RESULTS = Path(__file__).resolve().parent / "results" / "training_size.json"
NOT_PEERS = {"cli", "hybrid", "cold_start"}  # the CLI's answers, the run's own hybrid, new customers
SIZES = {"whole": 1, "half": 2, "quarter": 4}


def sets(seeds: list[int]) -> list[tuple[str, str, list[str]]]:
    """Every set's (size, folder name, bench_retail_cli options)."""
    chosen: list[tuple[str, str, list[str]]] = [("whole", "whole", [])]
    for size in ("half", "quarter"):
        parts = SIZES[size]
        for seed in seeds:
            for part in range(parts):
                options = ["--part", str(part), "--parts", str(parts), "--split-seed", str(seed)]
                chosen.append((size, f"{size}{part}_seed{seed}", options))
    return chosen


def run_set(folder: Path, options: list[str]) -> None:
    """`bench_retail_cli` on one set, unless its folder already holds the per-customer figures."""
    if all((folder / f"per_customer_{protocol}.csv").exists() for protocol in PROTOCOLS):
        return
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "benchmarks.bench_retail_cli", "--work", str(folder)]
    subprocess.run([*command, "--out", str(folder / "result.json"), *options], check=True)


def set_leads(folder: Path, protocol: str) -> tuple[pd.Series, pd.Series, str]:
    """Each test customer's CLI NDCG@10 and the set's best peer's (the highest mean), and its name."""
    table = pd.read_csv(folder / f"per_customer_{protocol}.csv", dtype={"customer_id": str}).set_index(
        "customer_id"
    )
    peers = table.drop(columns=[c for c in table.columns if c in NOT_PEERS])
    best = str(peers.mean().idxmax())
    return table["cli"], table[best], best


def customers_in(export: Path) -> int:
    """How many customers an export's lines name (the history a set's CLI model learned from)."""
    return int(pd.read_csv(export, usecols=["CustomerID"], dtype=str)["CustomerID"].nunique())


def interval(values: np.ndarray) -> list[float]:
    """The mean and its bootstrap 90% interval over customers, rounded for the report."""
    found = paired_interval(values, samples=2000, confidence=0.9, seed=11)
    return [round(found.mean, 4), round(found.low, 4), round(found.high, 4)]


def by_size(work: Path, chosen: list[tuple[str, str, list[str]]], protocol: str) -> dict[str, Any]:
    """Per size, each customer's CLI and best-peer NDCG@10 averaged over the seeds' sets that
    hold them; the sizes compared on the customers every size scored."""
    cli: dict[str, list[pd.Series]] = {size: [] for size in SIZES}
    peer: dict[str, list[pd.Series]] = {size: [] for size in SIZES}
    trained: dict[str, list[int]] = {size: [] for size in SIZES}
    best_peers: dict[str, set[str]] = {size: set() for size in SIZES}
    for size, name, _ in chosen:
        answers, best, best_name = set_leads(work / name, protocol)
        cli[size].append(answers)
        peer[size].append(best)
        best_peers[size].add(best_name)
        trained[size].append(customers_in(work / name / "history.csv.gz"))
    mean_cli = {size: pd.concat(cli[size]).groupby(level=0).mean() for size in SIZES}
    mean_peer = {size: pd.concat(peer[size]).groupby(level=0).mean() for size in SIZES}
    common = sorted(set.intersection(*(set(mean_cli[size].index) for size in SIZES)))
    report: dict[str, Any] = {"customers": len(common), "sizes": {}, "changes": {}}
    for size in SIZES:
        hybrid, best = mean_cli[size].loc[common].to_numpy(), mean_peer[size].loc[common].to_numpy()
        report["sizes"][size] = {
            "sets": len(cli[size]),
            "customers_learned_from": round(float(np.mean(trained[size]))),
            "best_peers": sorted(best_peers[size]),
            "cli_ndcg_at_10": round(float(hybrid.mean()), 4),
            "best_peer_ndcg_at_10": round(float(best.mean()), 4),
            "lead": interval(hybrid - best),
        }
    for larger, smaller in (("half", "quarter"), ("whole", "half")):
        gain = {
            kind: (values[larger].loc[common] - values[smaller].loc[common]).to_numpy()
            for kind, values in (("cli", mean_cli), ("peer", mean_peer))
        }
        report["changes"][f"{larger} - {smaller}"] = {
            "lead": interval(gain["cli"] - gain["peer"]),
            "cli": interval(gain["cli"]),
            "best_peer": interval(gain["peer"]),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="split seeds of the parts")
    parser.add_argument("--work", type=Path, required=True, help="one folder per set goes here")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    chosen = sets(args.seeds)
    for number, (_, name, options) in enumerate(chosen, start=1):
        print(f"set {number} of {len(chosen)}: {name}", flush=True)
        run_set(args.work / name, options)
    results = {
        "seeds": args.seeds,
        **{protocol: by_size(args.work, chosen, protocol) for protocol in PROTOCOLS},
    }
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
