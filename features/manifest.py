"""The features' manifest (`<shop>/features/manifest.json`): what `features build` wrote.

Read on its own by verbs that only need the build's input hash (`promote --shop-dir`), so
they do not import the feature pipelines (pandas, scikit-learn) to read one JSON file.
"""

from __future__ import annotations

import json

from storewise.shop import ShopPaths

MANIFEST = "manifest.json"


def read_manifest(shop: ShopPaths) -> dict[str, object] | None:
    path = shop.features / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
