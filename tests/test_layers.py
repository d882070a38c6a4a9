"""The layer rules hold: no import cycles, the service loads no training code or libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import layers


def test_the_repository_keeps_its_layers() -> None:
    assert layers.problems() == []


def test_the_graph_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from training.recommender.trainer import Trainer\n"
        "def f():\n    from inference.registry import load_champion\n    import storewise.columns\n",
        encoding="utf-8",
    )
    known = set(layers.project_modules())
    assert layers.imports_of(source, known) == {
        "training.recommender.trainer",
        "inference.registry",
        "storewise.columns",
    }


def test_a_cycle_and_a_layer_violation_are_found() -> None:
    edges = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "b.w": set()}
    assert layers.cycles(edges) == [["a.x", "a.y", "a.z"]]
    assert layers.cycles({"p": {"q"}, "q": set()}) == []
    wrong = {"serving.state": {"training.recommender.train"}, "storewise.ids": {"cli.main"}}
    assert [line.split(":")[0] for line in layers.layer_violations(wrong)] == [
        "serving.state imports training.recommender.train",
        "storewise.ids imports cli.main",
    ]
    assert layers.cycles(layers.package_edges({"a.m": {"b.n"}, "b.n": {"a.k"}, "a.k": set()})) == [["a", "b"]]


def test_loading_the_service_imports_no_training_code_or_libraries() -> None:
    """What `bentoml serve serving.service:Storewise` imports: the bento ships without
    scikit-learn, matplotlib, LightFM or implicit, and without training code."""
    probe = (
        "import sys, serving.service\n"
        "unwanted = ('sklearn', 'matplotlib', 'lightfm', 'implicit', 'training', 'features', 'intake',"
        " 'reports', 'privacy', 'cli')\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & set(unwanted))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=layers.REPO
    )
    assert result.stdout.strip() == ""
