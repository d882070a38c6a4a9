"""Batch recommendations for a file of customer ids (`storewise recommend`)."""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException

from storewise.errors import DataError, StorewiseError
from training.recommender.pyfunc import load_bundle
from training.recommender.recommend import Recommendations, normalize_customer_id
from training.tracking import download_bundle


def read_customer_ids(path: Path) -> list[str]:
    """One id per line as the shop writes them ('17850' or '17850.0'); blank lines and a
    'customer_id' header are skipped; repeated ids are kept once."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read: {error}", path=path) from None
    ids = [line.strip().split(",")[0].strip() for line in lines]
    ids = [
        value for value in ids if value and value.lower() not in ("customer_id", "customerid", "customer id")
    ]
    if not ids:
        raise DataError("no customer ids in the file", path=path)
    return list(dict.fromkeys(normalize_customer_id(value) for value in ids))


def load_recommendations(model_uri: str) -> Recommendations:
    """The registered recommender's bundle, read by this code (see tracking.download_bundle)."""
    try:
        return load_bundle(download_bundle(model_uri))
    except (MlflowException, FileNotFoundError) as error:
        message = error.message if isinstance(error, MlflowException) else str(error)
        raise StorewiseError(f"cannot load {model_uri}: {message.splitlines()[0]} "
                             "(train one with `storewise train recommender` and promote it)") from None  # fmt: skip
