"""The notebooks, executed as scripts, so they cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import NOTEBOOKS


@pytest.mark.slow
@pytest.mark.parametrize("notebook", sorted(path.name for path in NOTEBOOKS.glob("*.py")))
def test_notebook_runs(notebook: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STOREWISE_NOTEBOOK_SHOP": str(tmp_path / "shop"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MPLBACKEND": "Agg",
    }
    done = subprocess.run(
        [sys.executable, str(NOTEBOOKS / notebook)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
