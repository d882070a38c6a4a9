"""`storewise erase CUSTOMER_ID`: remove a customer from the shop's data, features, logs and
reports, and from what the service answers; list the model versions that still hold them.

In this order, each step safe to run again (after a crash, `storewise erase` with the same
id finishes the job; `unfinished_erasures` names erasures that started and never finished):
1. **the record first**: `<shop>/erasures.jsonl` gets a line with a salted hash of the id
   (never the id); the service re-reads it on every request that names a customer, so it
   stops personalizing for them before anything else happens;
2. **raw tables**: the customer's row is deleted; their orders and events stay as a
   guest's (the sales and views were real demand, the person is gone). Each changed table
   is written beside the old one and swapped in with one rename;
3. **logs**: every file of the price audit and the feedback log (live and rotated, every
   worker's) is rewritten without their lines and swapped in; the live ones under the logs'
   exclusive lock, which the service's writers honour (storewise/service_logs.py), so a
   line the service writes meanwhile waits for the swap and is never lost;
4. **reports** (they list customers) are deleted, **features** rebuilt without them
   (staged and swapped in by the pipeline);
5. a second line marks the erasure finished.
Model versions in the MLflow registry were trained on data that held the id:
`versions_holding` lists those whose bundle still does, and `delete_versions` deletes the
ones that are not the champion (the champion goes when a retrained model replaces it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.pipeline import build_features
from inference.registry import PRICING, RECOMMENDER, configure, download_bundle, find_champion
from intake.tables import read_tables
from storewise import columns as c
from storewise.erasures import ERASURES, hashed, salt_of
from storewise.errors import DataError
from storewise.service_logs import LOGS, ROTATED, log_files, logs_locked
from storewise.shop import ShopPaths


@dataclass
class ErasureResult:
    counts: dict[str, int] = field(default_factory=dict)
    already_recorded: bool = False


@dataclass(frozen=True)
class HeldBy:
    """A registered model version whose bundle holds the customer's id."""

    name: str
    version: str
    champion: bool


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def replace_file(path: Path, write: Callable[[Path], object]) -> None:
    """Write `path` anew through a staged file beside it, swapped in by one rename (a crash
    leaves the old file or the new one, never half of one)."""
    staged = path.with_name(f".{path.name}.erasing")
    write(staged)
    with staged.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(staged, path)


def erasure_records(shop: ShopPaths) -> list[dict[str, object]]:
    path = shop.root / ERASURES
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def add_record(shop: ShopPaths, record: dict[str, object]) -> None:
    path = shop.root / ERASURES
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    replace_file(path, lambda staged: staged.write_text(before + json.dumps(record) + "\n", encoding="utf-8"))


def unfinished_erasures(shop: ShopPaths) -> list[str]:
    """When each erasure that started but never finished (a crash) started."""
    records = erasure_records(shop)
    finished = {record["id_hash"] for record in records if "finished" in record}
    return [str(record["at"]) for record in records if "at" in record and record["id_hash"] not in finished]


def erase_customer(shop: ShopPaths, customer_id: str, *, rebuild_features: bool = True) -> ErasureResult:
    tables = read_tables(shop)
    id_hash = hashed(customer_id, salt_of(shop))
    recorded = any(record["id_hash"] == id_hash for record in erasure_records(shop))
    customers, orders = tables[c.CUSTOMERS], tables[c.ORDERS]
    known = (customers[c.CUSTOMER_ID] == customer_id).any() or (orders[c.CUSTOMER_ID] == customer_id).any()
    if not known and not recorded:
        raise DataError(f"unknown customer '{customer_id}' (nothing to erase)", path=shop.raw)
    result = ErasureResult(already_recorded=recorded)
    if not recorded:
        add_record(shop, {"at": now(), "id_hash": id_hash})  # first: the service stops personalizing
    result.counts.update(erase_from_tables(shop, tables, customer_id))
    result.counts.update(erase_from_logs(shop, customer_id))
    reports = shop.root / "reports"
    if reports.exists():
        trash = reports.with_name(f".reports.erasing-{os.getpid()}")
        reports.rename(trash)
        shutil.rmtree(trash)
        result.counts["reports deleted"] = 1
    if rebuild_features:
        build_features(shop, force=True)  # a rebuild drops them from every feature output
    add_record(shop, {"id_hash": id_hash, "finished": now(), "rows": result.counts})
    return result


def erase_from_tables(shop: ShopPaths, tables: dict[str, pd.DataFrame], customer_id: str) -> dict[str, int]:
    counts = {}
    customers = tables[c.CUSTOMERS]
    mine = customers[c.CUSTOMER_ID] == customer_id
    counts["customers"] = int(mine.sum())
    changed = {c.CUSTOMERS: customers[~mine].reset_index(drop=True)} if mine.any() else {}
    for name in (c.ORDERS, c.EVENTS):
        if name in tables:
            table = tables[name]
            theirs = table[c.CUSTOMER_ID] == customer_id
            counts[f"{name} anonymized"] = int(theirs.sum())
            if theirs.any():
                table[c.CUSTOMER_ID] = table[c.CUSTOMER_ID].where(~theirs, None)
                changed[name] = table
    for name, table in changed.items():
        replace_file(shop.table(name), lambda staged, table=table: table.to_parquet(staged, index=False))  # type: ignore[misc]
    return counts


def without_customer(path: Path, customer_id: str) -> tuple[bytes, int] | None:
    """The file's lines without the customer's, and how many went; None if none did. Only
    lines that contain the id as a JSON string are parsed."""
    needle = json.dumps(customer_id).encode()
    data = path.read_bytes()
    if needle not in data:
        return None
    kept, removed = [], 0
    for line in data.splitlines(keepends=True):
        if needle in line:
            try:
                if json.loads(line).get("customer_id") == customer_id:
                    removed += 1
                    continue
            except (json.JSONDecodeError, AttributeError):
                pass  # a torn line from a crash is kept as it is
        kept.append(line)
    return b"".join(kept), removed


def erase_from_logs(shop: ShopPaths, customer_id: str) -> dict[str, int]:
    """Rotated files (no longer written) first, without holding the lock; then, holding it
    exclusively, the live files and any rotated since."""
    counts = {f"log {name}": 0 for name in LOGS}
    done: set[Path] = set()

    def rewrite(path: Path, name: str) -> None:
        done.add(path)
        try:
            filtered = without_customer(path, customer_id)
        except FileNotFoundError:  # pruned by the service's retention meanwhile
            return
        if filtered is not None:
            replace_file(path, lambda staged: staged.write_bytes(filtered[0]))
            counts[f"log {name}"] += filtered[1]

    for name in LOGS:
        for path in log_files(shop.logs, name):
            if ROTATED.search(path.name):
                rewrite(path, name)
    with logs_locked(shop.logs, exclusive=True):
        for name in LOGS:
            for path in log_files(shop.logs, name):
                if path not in done:
                    rewrite(path, name)
    return counts


# -- model versions in the registry --------------------------------------------------


def parquet_mentions(path: Path, customer_id: str) -> bool:
    frame = pd.read_parquet(path)
    return any(
        (frame[column].astype(str) == customer_id).any()
        for column in frame.columns
        if frame[column].dtype.kind in "OUS" or isinstance(frame[column].dtype, pd.StringDtype)
    )


def npz_mentions(path: Path, customer_id: str) -> bool:
    with np.load(path, allow_pickle=False) as arrays:
        for name in arrays.files:
            try:
                values = arrays[name]
            except ValueError:  # an object array needs pickle: not ours to open
                continue
            if values.dtype.kind in "US" and customer_id in values.astype(str):
                return True
    return False


def bundle_mentions(bundle: Path, customer_id: str) -> bool:
    """Whether any file of a model bundle holds the id: a text column of a Parquet table, a
    text array of an .npz, or the bytes of any other file."""
    readers = {".parquet": parquet_mentions, ".npz": npz_mentions}
    for path in sorted(bundle.rglob("*")):
        if path.is_file():
            reader = readers.get(path.suffix)
            if reader(path, customer_id) if reader else customer_id.encode() in path.read_bytes():
                return True
    return False


def versions_holding(customer_id: str) -> list[HeldBy]:
    """Every registered version of the two models whose bundle still holds the id."""
    client = configure()
    held = []
    for name in (RECOMMENDER, PRICING):
        champion = find_champion(client, name)
        for version in client.search_model_versions(f"name='{name}'"):
            with tempfile.TemporaryDirectory(prefix="storewise-erasure-") as into:
                try:
                    bundle = download_bundle(f"models:/{name}/{version.version}", Path(into))
                except FileNotFoundError:
                    continue  # no bundle: nothing of anyone's
                if bundle_mentions(bundle, customer_id):
                    held.append(HeldBy(name, str(version.version), str(version.version) == champion))
    return sorted(held, key=lambda held_by: (held_by.name, int(held_by.version)))


def delete_versions(versions: list[HeldBy], model_cache: Path | None = None) -> list[HeldBy]:
    """Delete these versions (never a champion) from the registry, with their logged
    model's files when the artifact store is a local directory, and any local copy the
    service cached; the versions deleted."""
    client = configure()
    deleted = []
    for held in versions:
        if held.champion:
            continue
        model_id = getattr(client.get_model_version(held.name, held.version), "model_id", None)
        client.delete_model_version(held.name, held.version)
        if model_id:
            location = client.get_logged_model(model_id).artifact_location
            client.delete_logged_model(model_id)
            local = Path(location.removeprefix("file://"))
            if "://" not in str(local) and local.is_dir():
                shutil.rmtree(local)
        if model_cache is not None:
            for copy in model_cache.glob(f"*/{held.name}/{held.version}"):
                shutil.rmtree(copy, ignore_errors=True)
        deleted.append(held)
    return deleted


def still_present(shop: ShopPaths, customer_id: str) -> list[str]:
    """Files under the shop that still mention the id (Parquet read as tables, the rest as text)."""
    found = []
    for path in sorted(shop.root.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            text_columns = [
                name
                for name in frame.columns
                if pd.api.types.is_string_dtype(frame[name])
                or frame[name].dtype == object
                or isinstance(frame[name].dtype, pd.CategoricalDtype)
            ]
            if any((frame[name].astype(str) == customer_id).any() for name in text_columns):
                found.append(str(path))
        elif customer_id.encode() in path.read_bytes():
            found.append(str(path))
    return found
