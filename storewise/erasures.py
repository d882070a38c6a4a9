"""The erasure record: which customers asked to be forgotten, without keeping their ids.

`storewise erase` (privacy/erasure.py) appends one line per erased customer to
`<shop>/erasures.jsonl`, holding a salted SHA-256 of the id, never the id. The service reads
it to stop personalizing for them at once. The salt is the shop's own (`<shop>/erasure_salt`),
so a record cannot be matched against ids from another shop.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from storewise.shop import ShopPaths

ERASURES = "erasures.jsonl"
SALT = "erasure_salt"


def salt_of(shop: ShopPaths) -> str:
    path = shop.root / SALT
    if not path.exists():
        path.write_text(secrets.token_hex(16), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def hashed(customer_id: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()


def erased_hashes(shop_root: Path) -> set[str]:
    path = shop_root / ERASURES
    if not path.exists():
        return set()
    return {
        json.loads(line)["id_hash"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    }
