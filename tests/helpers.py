"""What several tests share: where the repository and the shared data are, the small demo
shop's size, and a fast, deterministic recommender config. Tests import these from here;
`conftest.py` only holds fixtures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from intake.demo.generate import GeneratorSettings
from storewise.config import CONFIG_DIR

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
ONLINE_RETAIL_SAMPLE = SHARED_DATA / "online-retail-sample.csv.gz"
DOMINICKS_SAMPLE = SHARED_DATA / "dominicks-oj-sample.csv.gz"
NOTEBOOKS = REPO / "notebooks"

# Small enough to generate in a fraction of a second, big enough to have every quirk.
SMALL = GeneratorSettings(customers=3_000, products=60, days=120, seed=7)


def fast_config(tmp_path: Path, **recommender_overrides: object) -> Path:
    """A copy of config/ with a recommender small and deterministic enough for tests;
    `section.key=value` overrides go into recommender.yaml."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    settings = yaml.safe_load((target / "recommender.yaml").read_text())
    settings["lightfm"].update({"components": 16, "max_epochs": 8, "patience": 2, "threads": 1})
    settings["evaluation"].update({"validation_folds": 1})
    settings["blend"].update({"grid": [0, 0.5, 1.0], "passes": 1})
    # repurchase timing's trees were the costliest component in a test's training (8 s of 41)
    settings["repurchase"].update({"max_pairs": 20_000, "iterations": 15})
    for key, value in recommender_overrides.items():
        section, _, name = key.partition(".")
        settings[section][name] = value
    (target / "recommender.yaml").write_text(yaml.safe_dump(settings))
    return target


def imported_after(args: list[str], env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run the CLI in-process in a fresh interpreter with `args`; its exit code and the
    modules it had imported by then."""
    probe = (
        "import json, sys\n"
        "from cli.main import main\n"
        f"sys.argv = ['storewise', *{args!r}]\n"
        "try:\n    main()\n    code = 0\n"
        "except SystemExit as done:\n    code = done.code or 0\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=True,
    )
    code, modules = json.loads(done.stdout.strip().splitlines()[-1])
    return int(code), set(modules)
