"""The training-size benchmark's parts of the customers and its pairing across sizes
(`benchmarks/bench_training_size.py`), on small hand-made exports and per-customer tables
whose answers are worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.bench_retail_cli import part
from benchmarks.bench_training_size import by_size, sets


def export(path: Path) -> Path:
    """Twenty customers with three lines each, and two guest invoices."""
    rows = [
        {"InvoiceNo": f"5{n:04d}{line}", "CustomerID": str(12000 + n), "StockCode": f"A{line}"}
        for n in range(20)
        for line in range(3)
    ]
    rows += [{"InvoiceNo": f"C6000{k}", "CustomerID": "", "StockCode": "B"} for k in (1, 2)]
    pd.DataFrame(rows).to_csv(path, index=False, compression="gzip")
    return path


def customers_of(path: Path) -> set[str]:
    return set(pd.read_csv(path, dtype=str, keep_default_na=False)["CustomerID"]) - {""}


def test_parts_split_the_customers_whole_and_a_seeds_quarters_lie_inside_its_halves(tmp_path: Path) -> None:
    lines = export(tmp_path / "export.csv.gz")
    quarters = [tmp_path / f"q{k}.csv.gz" for k in range(4)]
    counts = [part(lines, k, quarters[k], parts=4, split_seed=5) for k in range(4)]
    halves = [tmp_path / f"h{k}.csv.gz" for k in range(2)]
    for k in range(2):
        part(lines, k, halves[k], parts=2, split_seed=5)
    sets_of_customers = [customers_of(q) for q in quarters]
    assert counts == [len(found) for found in sets_of_customers]
    assert sum(counts) == 20
    assert set.union(*sets_of_customers) == {str(12000 + n) for n in range(20)}
    assert sum(len(pd.read_csv(q)) for q in quarters) == 62, "every line in exactly one part"
    assert sets_of_customers[0] | sets_of_customers[2] == customers_of(halves[0])
    assert sets_of_customers[1] | sets_of_customers[3] == customers_of(halves[1])
    part(lines, 1, tmp_path / "odd.csv.gz", parts=2)
    assert customers_of(tmp_path / "odd.csv.gz") == {str(12000 + n) for n in range(1, 20, 2)}, "parity halves"


def write_set(folder: Path, learned_from: int, scores: dict[str, dict[str, float]]) -> None:
    """A set's folder as bench_retail_cli leaves it: per-customer figures under both protocols
    (the same here) and the history export the CLI's model learned from."""
    folder.mkdir(parents=True)
    table = pd.DataFrame(scores).rename_axis("customer_id")
    for protocol in ("discovery", "all_purchases"):
        table.to_csv(folder / f"per_customer_{protocol}.csv")
    ids = [str(20000 + n) for n in range(learned_from)]
    pd.DataFrame({"CustomerID": ids}).to_csv(folder / "history.csv.gz", index=False, compression="gzip")


def test_each_customer_is_paired_with_itself_across_sizes_against_each_sets_best_peer(tmp_path: Path) -> None:
    # Customers a, b (half 0; quarters 0 and 2) and c, d (half 1; quarters 1 and 3); seed 1 only.
    # Whole: the CLI 0.5 for all, TIFU-KNN 0.3 (best), buy again 0.2: the lead is 0.2.
    write_set(
        tmp_path / "whole",
        8,
        {
            "cli": dict.fromkeys("abcd", 0.5),
            "tifu_knn": dict.fromkeys("abcd", 0.3),
            "buy_again": dict.fromkeys("abcd", 0.2),
            "hybrid": dict.fromkeys("abcd", 0.9),
        },
    )
    # Halves: the CLI 0.4, TIFU-KNN 0.3: the lead is 0.1. The run's own hybrid is no peer.
    for half, ids in (("half0", "ab"), ("half1", "cd")):
        write_set(
            tmp_path / f"{half}_seed1",
            4,
            {
                "cli": dict.fromkeys(ids, 0.4),
                "tifu_knn": dict.fromkeys(ids, 0.3),
                "hybrid": dict.fromkeys(ids, 0.9),
            },
        )
    # Quarters: the CLI 0.3; buy again is the best peer of quarter 0 (0.35 against TIFU-KNN's
    # 0.1), TIFU-KNN of the others (0.3): leads -0.05, 0, 0, 0; a customer only the quarter
    # scored (e) is left out of every size.
    write_set(
        tmp_path / "quarter0_seed1",
        2,
        {"cli": {"a": 0.3, "e": 0.9}, "tifu_knn": {"a": 0.1, "e": 0.1}, "buy_again": {"a": 0.35, "e": 0.35}},
    )
    for quarter, customer in (("quarter1", "c"), ("quarter2", "b"), ("quarter3", "d")):
        write_set(tmp_path / f"{quarter}_seed1", 2, {"cli": {customer: 0.3}, "tifu_knn": {customer: 0.3}})

    report = by_size(tmp_path, sets([1]), "all_purchases")

    assert report["customers"] == 4
    whole, half, quarter = (report["sizes"][size] for size in ("whole", "half", "quarter"))
    assert (whole["sets"], half["sets"], quarter["sets"]) == (1, 2, 4)
    assert (
        whole["customers_learned_from"],
        half["customers_learned_from"],
        quarter["customers_learned_from"],
    ) == (8, 4, 2)
    assert whole["best_peers"] == half["best_peers"] == ["tifu_knn"]
    assert quarter["best_peers"] == ["buy_again", "tifu_knn"]
    assert whole["lead"][0] == pytest.approx(0.2)
    assert half["lead"][0] == pytest.approx(0.1)
    assert quarter["lead"][0] == pytest.approx(-0.0125), "(-0.05 + 0 + 0 + 0) / 4"
    assert quarter["best_peer_ndcg_at_10"] == pytest.approx((0.35 + 0.3 * 3) / 4, abs=1e-4)
    assert report["changes"]["whole - half"]["lead"][:3] == pytest.approx([0.1, 0.1, 0.1])
    assert report["changes"]["half - quarter"]["lead"][0] == pytest.approx(0.1125)
    assert report["changes"]["half - quarter"]["cli"][0] == pytest.approx(0.1)
