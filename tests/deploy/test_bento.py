"""The bento as it ships: `make bento` builds it, a fresh virtual environment gets only its
requirements (the service's dependency set, wheels only: uv refuses any source build), and
`bentoml serve <tag>` from that environment, outside the repository, answers `recommend`,
`price` and `quote` for champions trained here, exactly as the full environment computes
them. The training libraries are absent from that environment, so the service's set is
proved enough, not assumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from features.pipeline import build_features
from inference.registry import PRICING, RECOMMENDER, load_champion
from intake.demo.generate import generate_shop
from intake.demo.writer import write_generated_shop
from storewise import columns as c
from storewise.shop import ShopPaths
from tests.helpers import REPO, SMALL, fast_config
from tests.servers import free_port, wait_until_ready
from training.pricing.train import train_pricing
from training.promotion import promote
from training.recommender.train import train_recommender

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bento")]
UV = REPO / ".uv" / "bin" / "uv"
# what training needs and the service must not: none of these may be in the bento's environment
TRAINING_ONLY = ("lightfm", "implicit", "sklearn", "matplotlib", "openpyxl", "psycopg", "typer", "flask")


@dataclass(frozen=True)
class Bento:
    tag: str
    home: Path  # its BENTOML_HOME
    requirements: Path


@dataclass(frozen=True)
class Store:
    uri: str
    shop: ShopPaths


def run_or_fail(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed: {done.stdout[-3000:]} {done.stderr[-3000:]}")
    return done  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def bento(tmp_path_factory: pytest.TempPathFactory) -> Bento:
    """`make bento` as a developer runs it (`-o install`: the suite's environment is not
    re-synced under the other tests' feet), into a BentoML home of its own."""
    if not UV.exists():
        pytest.fail(f"{UV} is missing: `make install` bootstraps it")
    home = tmp_path_factory.mktemp("bentoml-home")
    run_or_fail(["make", "-o", "install", "bento"], cwd=REPO, env={**os.environ, "BENTOML_HOME": str(home)})
    version = (home / "bentos" / "storewise" / "latest").read_text().strip()
    return Bento(
        f"storewise:{version}", home, home / "bentos" / "storewise" / version / "env/python/requirements.txt"
    )


@pytest.fixture(scope="module")
def service_python(bento: Bento, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the bento's requirements only, as its Dockerfile installs them."""
    venv = tmp_path_factory.mktemp("bento-env") / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    run_or_fail([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], env=env)
    python = venv / "bin" / "python"
    run_or_fail(
        [str(UV), "pip", "install", "--quiet", "--python", str(python), "-r", str(bento.requirements)],
        env=env,
    )
    return python


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Both models trained and promoted (forced: the tiny shop need not pass the gate) in an
    embedded store, which the service's set reads too."""
    root = tmp_path_factory.mktemp("bento-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        shop = ShopPaths(root / "shop")
        write_generated_shop(shop, generate_shop(SMALL))
        config = fast_config(root)
        build_features(shop, config_dir=config)
        promote(RECOMMENDER, train_recommender(shop, config_dir=config).version, force=True)
        promote(PRICING, train_pricing(shop, config_dir=config, simulation_days=10).version, force=True)
        yield Store(uri, shop)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="module")
def served(
    bento: Bento, service_python: Path, store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`bentoml serve <tag>` from the bento's environment, started outside the repository."""
    workdir = tmp_path_factory.mktemp("bento-serve")
    log_path = workdir / "serve.log"
    port = free_port()
    env = {
        **os.environ,
        "BENTOML_HOME": str(bento.home),
        "MLFLOW_TRACKING_URI": store.uri,
        "STOREWISE_SHOP_DIR": str(store.shop.root),
        "STOREWISE_WORKERS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    process = subprocess.Popen(
        [
            str(service_python.parent / "bentoml"),
            "serve",
            bento.tag,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=workdir,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/readyz", process, log_path)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_bento_requires_only_the_service_set_as_wheels(bento: Bento, service_python: Path) -> None:
    requirements = bento.requirements.read_text()
    assert requirements.splitlines()[0] == "--only-binary :all:"
    pinned = {line.split("==")[0].lower() for line in requirements.splitlines() if "==" in line}
    assert {"bentoml", "mlflow-skinny", "pandas", "pyarrow"} <= pinned
    assert not pinned & {"rectools-lightfm", "implicit", "scikit-learn", "matplotlib", "mlflow", "psycopg"}
    probe = f"import importlib.util as u; print(' '.join(m for m in {TRAINING_ONLY!r} if u.find_spec(m)))"
    found = run_or_fail([str(service_python), "-c", probe]).stdout.strip()
    assert found == "", f"the bento's environment has training libraries: {found}"


def test_the_served_bento_answers_recommend_price_and_quote(served: str, store: Store) -> None:
    info = httpx.post(f"{served}/info", json={}, timeout=30).json()
    assert {name: info["model_versions"][name] for name in ("recommender", "pricing")} == {
        "recommender": "1",
        "pricing": "1",
    }
    interactions = pd.read_parquet(store.shop.features / "interactions.parquet")
    customer = str(interactions[c.CUSTOMER_ID].value_counts().index[0])
    # what the full environment computes from the same champions, in this process
    expected = [item.item_id for item in load_champion(RECOMMENDER).recommend(customer, 5).items]
    answer = httpx.post(f"{served}/recommend", json={"customer_id": customer, "k": 5}, timeout=30).json()
    assert answer["personalized"] is True
    assert [item["item_id"] for item in answer["items"]] == expected

    decided = load_champion(PRICING).price(expected[:3])
    prices = httpx.post(f"{served}/price", json={"item_ids": expected[:3]}, timeout=30).json()
    assert [row["base_price"] for row in prices["prices"]] == pytest.approx(decided["price"].tolist())

    cart = [{"item_id": expected[0], "quantity": 2}, {"item_id": expected[1], "quantity": 1}]
    quoted = httpx.post(f"{served}/quote", json={"cart": cart}, timeout=30).json()
    assert [line["base_price"] for line in quoted["lines"]] == pytest.approx(decided["price"].tolist()[:2])
    for line, asked in zip(quoted["lines"], cart, strict=True):
        assert line["amount"] == pytest.approx(line["unit_price"] * asked["quantity"])
    assert quoted["subtotal"] == pytest.approx(sum(line["amount"] for line in quoted["lines"]))
    assert quoted["total"] == pytest.approx(quoted["subtotal"] + quoted["shipping"])
