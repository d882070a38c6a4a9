"""Reading and writing a shop's canonical tables (Parquet under `<shop>/raw/`).

Writes are staged in a temporary directory inside the shop and moved into place only
when every file is written, so a failed import or generation leaves the previous shop as
it was and never half of a new one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from intake.schemas import SCHEMAS
from storewise import columns as c
from storewise.errors import DataError
from storewise.shop import ShopPaths


def read_table(shop: ShopPaths, name: str) -> pd.DataFrame | None:
    """The stored table, or None when an optional table is absent."""
    path = shop.table(name)
    if not path.exists():
        if SCHEMAS[name].required:
            raise DataError(
                f"table '{name}' is missing; run `storewise data import` or `data generate`",
                path=path,
            )
        return None
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"cannot read Parquet: {error}", path=path) from None


def read_tables(shop: ShopPaths) -> dict[str, pd.DataFrame]:
    """Every table the shop has; the required ones must be there."""
    if not shop.raw.is_dir():
        raise DataError(
            "no shop here (no raw/ directory); run `storewise data generate` or `data import`",
            path=shop.root,
        )
    tables = {}
    for name in c.TABLES:
        table = read_table(shop, name)
        if table is not None:
            tables[name] = table
    return tables


@contextmanager
def staged_shop(shop: ShopPaths, stale: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Yield an empty staging directory laid out like a shop; on success move what was
    written into the shop (replacing those entries only) and delete the `stale` entries
    that belonged to the shop's previous data; on failure delete the staging directory."""
    shop.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=shop.root))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_in(staging, shop.root)
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _swap_in(staging: Path, root: Path) -> None:
    backups: list[tuple[Path, Path]] = []
    for entry in sorted(staging.iterdir()):
        target = root / entry.name
        if target.exists():
            backup = staging.with_name(f"{staging.name}.old-{entry.name}")
            target.rename(backup)
            backups.append((backup, target))
        entry.rename(target)
    for backup, _ in backups:
        if backup.is_dir():
            shutil.rmtree(backup)
        else:
            backup.unlink()
    staging.rmdir()


def write_tables(directory: Path, tables: dict[str, pd.DataFrame]) -> None:
    raw = directory / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_parquet(raw / f"{name}.parquet", index=False)
