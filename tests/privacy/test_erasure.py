"""Erasure without the service: the record first, raw tables and logs swapped in whole, a
crash half-way finished by running it again, and logs rewritten while other processes
append to them without losing one of their lines."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import pandas as pd
import pytest

import privacy.erasure as erasure
from intake.tables import read_tables
from privacy.erasure import erase_customer, erase_from_logs, still_present, unfinished_erasures
from serving.logs import JsonLines
from storewise import columns as c
from storewise.erasures import erased_hashes, hashed, salt_of
from storewise.errors import DataError
from storewise.service_logs import FEEDBACK, PRICE_AUDIT, log_files
from storewise.shop import ShopPaths

GONE = "C-GONE"


@pytest.fixture
def shop(small_shop: ShopPaths, tmp_path: Path) -> ShopPaths:
    """A copy of the small shop (no features: the erasure's rebuild is left out here)."""
    copy = ShopPaths(tmp_path / "shop")
    shutil.copytree(small_shop.root, copy.root)
    return copy


def a_buyer(shop: ShopPaths) -> str:
    orders = pd.read_parquet(shop.table(c.ORDERS))
    return str(orders[c.CUSTOMER_ID].dropna().value_counts().index[0])


def write_logs(shop: ShopPaths, customer: str) -> None:
    for name in (PRICE_AUDIT, FEEDBACK):
        JsonLines(shop.logs, name).append(
            [
                {"customer_id": customer, "n": 1},
                {"customer_id": "someone else", "n": 2},
                {"customer_id": None},
            ]
        )


def test_an_unknown_customer_is_refused_and_nothing_is_recorded(shop: ShopPaths) -> None:
    with pytest.raises(DataError, match="unknown customer 'NOBODY'"):
        erase_customer(shop, "NOBODY", rebuild_features=False)
    assert erased_hashes(shop.root) == set()


def test_a_crash_half_way_leaves_the_record_and_whole_files_and_a_second_run_finishes(
    shop: ShopPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = a_buyer(shop)
    write_logs(shop, customer)
    written: list[str] = []
    real = pd.DataFrame.to_parquet

    def crash_on_the_second_table(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        written.append(str(path))
        if len(written) == 2:
            raise OSError("power cut")  # the process dies while writing the second table
        real(self, path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash_on_the_second_table)
    with pytest.raises(OSError, match="power cut"):
        erase_customer(shop, customer, rebuild_features=False)
    monkeypatch.undo()

    # the record was written first: the service already treats them as erased
    assert hashed(customer, salt_of(shop)) in erased_hashes(shop.root)
    assert len(unfinished_erasures(shop)) == 1
    # every table is whole (the old one or the new one), never half written
    tables = read_tables(shop)
    assert (tables[c.CUSTOMERS][c.CUSTOMER_ID] == customer).sum() == 0  # the first swap happened
    assert (tables[c.ORDERS][c.CUSTOMER_ID] == customer).sum() > 0  # the second did not
    assert still_present(shop, customer)  # ...so they are still there

    again = erase_customer(shop, customer, rebuild_features=False)
    assert again.already_recorded
    assert still_present(shop, customer) == []
    assert unfinished_erasures(shop) == []
    assert again.counts[f"log {PRICE_AUDIT}"] == 1
    for name in (PRICE_AUDIT, FEEDBACK):
        (path,) = log_files(shop.logs, name)
        assert [json.loads(line).get("n") for line in path.read_text().splitlines()] == [2, None]
    assert not list(shop.root.rglob("*.erasing*"))
    # and a third run changes nothing and says so
    third = erase_customer(shop, customer, rebuild_features=False)
    assert third.already_recorded
    assert third.counts["customers"] == 0


def append_lines(logs: str, tag: str, count: int) -> None:
    log = JsonLines(Path(logs), PRICE_AUDIT, max_bytes=30_000, keep=10_000)
    for number in range(count):
        who = GONE if number % 5 == 0 else f"{tag}-{number % 40}"
        log.append([{"customer_id": who, "who": tag, "n": number, "pad": "z" * 80}])


def test_logs_rewritten_while_two_processes_append_lose_no_line_of_anyone_else(tmp_path: Path) -> None:
    shop = ShopPaths(tmp_path / "shop")
    shop.logs.mkdir(parents=True)
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=append_lines, args=(str(shop.logs), tag, 2000)) for tag in "ab"]
    for writer in writers:
        writer.start()
    rewrites = 0
    while any(writer.is_alive() for writer in writers):
        erase_from_logs(shop, GONE)
        rewrites += 1
    for writer in writers:
        writer.join()
    erase_from_logs(shop, GONE)
    rows = [
        json.loads(line)
        for path in log_files(shop.logs, PRICE_AUDIT)
        for line in path.read_text().splitlines()
    ]
    kept = {(row["who"], row["n"]) for row in rows}
    expected = {(tag, number) for tag in "ab" for number in range(2000) if number % 5}
    assert rewrites >= 3
    assert len(rows) == len(kept)  # no line twice
    assert kept == expected  # every line of everyone else, none of theirs
    assert all(row["customer_id"] != GONE for row in rows)
    assert not list(shop.logs.glob(".*.erasing"))


def test_model_bundles_are_searched_in_tables_arrays_and_text(tmp_path: Path) -> None:
    import numpy as np

    bundle = tmp_path / "bundle"
    (bundle / "hybrid").mkdir(parents=True)
    np.savez(bundle / "hybrid" / "arrays.npz", user_ids=np.array(["C1", "C2"]), numbers=np.arange(3))
    pd.DataFrame({c.CUSTOMER_ID: ["C3"], "x": [1]}).to_parquet(bundle / "customers.parquet")
    (bundle / "rules.json").write_text('{"pinned": ["C4"]}')
    for customer, held in [("C1", True), ("C3", True), ("C4", True), ("C5", False)]:
        assert erasure.bundle_mentions(bundle, customer) is held


def test_the_erase_command_says_what_it_did_and_refuses_an_unknown_id(
    shop: ShopPaths, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    customer = a_buyer(shop)
    storewise = str(Path(sys.executable).parent / "storewise")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}"}
    done = subprocess.run(
        [storewise, "erase", customer, "--shop-dir", str(shop.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "  customers: 1" in done.stdout
    assert "stopped personalizing for this customer before anything else" in done.stdout
    assert "no model versions to check" in done.stdout
    assert still_present(shop, customer) == []
    unknown = subprocess.run(
        [storewise, "erase", "NOBODY", "--shop-dir", str(shop.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == f"error: {shop.raw}: unknown customer 'NOBODY' (nothing to erase)"
