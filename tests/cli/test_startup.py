"""The CLI starts light: a verb imports what it runs, nothing at start-up.

`cli.main` wires every verb group, so whatever a group's module imports at the top is paid
by every verb, `--help` included. The demo runs eight verbs one after another; a
scientific library imported at start-up by all of them cost about 14 s of the two
promotes alone. Checked on what a process has imported, not on a clock."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import imported_after

HEAVY = ("numpy", "pandas", "pyarrow", "scipy", "sklearn", "mlflow", "matplotlib", "lightfm", "implicit")
# what promote needs is MLflow (and what MLflow imports); never the feature pipelines or
# the training libraries
NOT_FOR_PROMOTE = (
    "sklearn",
    "matplotlib",
    "lightfm",
    "implicit",
    "features.pipeline",
    "training.recommender.train",
)


def test_help_of_any_verb_imports_no_scientific_library() -> None:
    for args in (["--help"], ["promote", "--help"], ["data", "generate", "--help"], ["serve", "--help"]):
        code, modules = imported_after(args)
        assert code == 0
        assert {name.split(".")[0] for name in modules} & set(HEAVY) == set(), args


def test_promote_imports_no_feature_pipeline_or_training_library(tmp_path: Path) -> None:
    """A real promote on an empty store (it fails: nothing registered) goes through every
    import the verb makes, `--shop-dir`'s manifest included."""
    features = tmp_path / "shop" / "features"
    features.mkdir(parents=True)
    (features / "manifest.json").write_text(json.dumps({"input_hash": "0" * 64}), encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["promote", "--model", "pricing", "--shop-dir", str(tmp_path / "shop")]
    code, modules = imported_after(args, env={"MLFLOW_TRACKING_URI": store})
    assert code == 2  # no version of the model is registered: a usage error, not a crash
    assert "mlflow" in modules  # it did reach the registry
    heavy = {m for m in modules for name in NOT_FOR_PROMOTE if m == name or m.startswith(f"{name}.")}
    assert heavy == set()
