"""A team's setup, for real: PostgreSQL (Debian's package) as MLflow's backend store, an
`mlflow server` with an artifact root, two trainers in two processes at once, a comparison,
promotions through the gate, and the service loading and reloading the champion through
the server. What the server stored is read back from PostgreSQL directly, not through MLflow.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from features.pipeline import build_features
from inference.registry import PRICING, RECOMMENDER
from intake.demo.generate import generate_shop
from intake.demo.writer import write_generated_shop
from storewise import columns as c
from storewise.shop import ShopPaths
from tests.helpers import SMALL, fast_config
from tests.servers import free_port, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("team")]
VENV_BIN = Path(sys.executable).parent
TRAINED = re.compile(r"wrote run (\w+) and registered storewise-(\w+) version (\d+)")


def postgres_bin() -> Path | None:
    """Debian installs the server binaries outside PATH, one folder per major version."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def run_or_fail(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")


@dataclass
class Team:
    url: str  # the MLflow tracking server
    database: str  # libpq connection string of its backend store
    artifacts: Path
    shop: ShopPaths
    root: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "MLFLOW_TRACKING_URI": self.url, "OMP_NUM_THREADS": "1", **extra}

    def storewise(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "storewise"), *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=600,
        )

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.database) as connection:
            return list(connection.execute(sql, params).fetchall())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    binaries = postgres_bin()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")
    # PostgreSQL refuses to run as root, and pytest's temporary folders are root's alone, so
    # the cluster lives in a folder of its own that the postgres user owns.
    root = Path(tempfile.mkdtemp(prefix="storewise-team-"))
    root.chmod(0o755)
    cluster = root / "postgres"
    cluster.mkdir()
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(cluster, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    pg_port, mlflow_port = free_port(), free_port()
    run_or_fail(
        [
            *as_postgres,
            str(binaries / "initdb"),
            "-D",
            str(cluster / "data"),
            "-U",
            "storewise",
            "--auth=trust",
            "-E",
            "UTF8",
        ]
    )
    run_or_fail(
        [
            *as_postgres,
            str(binaries / "pg_ctl"),
            "-D",
            str(cluster / "data"),
            "-l",
            str(cluster / "server.log"),
            "-w",
            "-o",
            f"-p {pg_port} -k {cluster} -c listen_addresses=127.0.0.1",
            "start",
        ]
    )
    mlflow_server: subprocess.Popen[bytes] | None = None
    try:
        run_or_fail(
            [str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "storewise", "mlflow"]
        )
        artifacts = root / "artifacts"
        log = (root / "mlflow-server.log").open("wb")
        mlflow_server = subprocess.Popen(
            [
                str(VENV_BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                f"postgresql://storewise@127.0.0.1:{pg_port}/mlflow",
                "--artifacts-destination",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=root,
        )
        # the shop is made while the server creates its tables
        shop = ShopPaths(tmp_path_factory.mktemp("team") / "shop")
        write_generated_shop(shop, generate_shop(SMALL))
        build_features(shop)
        url = f"http://127.0.0.1:{mlflow_port}"
        wait_until_ready(f"{url}/health", mlflow_server, root / "mlflow-server.log")
        yield Team(url, f"host=127.0.0.1 port={pg_port} user=storewise dbname=mlflow", artifacts, shop, root)
    finally:
        if mlflow_server is not None:
            os.killpg(mlflow_server.pid, signal.SIGTERM)
            mlflow_server.wait(timeout=30)
        subprocess.run(
            [*as_postgres, str(binaries / "pg_ctl"), "-D", str(cluster / "data"), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def champion_in_database(team: Team, name: str) -> str:
    rows = team.query(
        "select version from registered_model_aliases where name = %s and alias = 'champion'", name
    )
    return str(rows[0][0]) if rows else "none"


def served_versions(url: str) -> dict[str, str]:
    versions = httpx.post(f"{url}/info", json={}, timeout=10).json()["model_versions"]
    return {name: versions[name] for name in ("recommender", "pricing")}


def test_two_trainers_compare_promote_and_serve_through_the_server(team: Team, tmp_path: Path) -> None:
    # Two colleagues train at once, with different settings, against the same server.
    configs = [fast_config(tmp_path / "a"), fast_config(tmp_path / "b", **{"lightfm.components": 24})]
    command = [str(VENV_BIN / "storewise"), "train", "recommender", "--shop-dir", str(team.shop.root)]
    trainers = [
        subprocess.Popen(
            command,
            env=team.env(STOREWISE_CONFIG_DIR=str(config)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for config in configs
    ]
    outputs = [trainer.communicate(timeout=600)[0] for trainer in trainers]
    for trainer, output in zip(trainers, outputs, strict=True):
        assert trainer.returncode == 0, output[-3000:]
    trained = [TRAINED.search(output) for output in outputs]
    assert all(trained), outputs
    (run_a, _, version_a), (run_b, _, version_b) = [match.groups() for match in trained if match]
    assert {version_a, version_b} == {"1", "2"}

    # What the server stored is in PostgreSQL: both versions with their runs, their metrics,
    # and where their files went: under the server's artifact root, uploaded through its proxy.
    stored = team.query(
        "select version, run_id, storage_location from model_versions where name = %s", RECOMMENDER
    )
    assert {(str(version), run) for version, run, _ in stored} == {(version_a, run_a), (version_b, run_b)}
    for _, _, location in stored:
        assert location.startswith("mlflow-artifacts:/"), location
        bundle = team.artifacts / location.removeprefix("mlflow-artifacts:/") / "artifacts" / "bundle"
        assert (bundle / "catalog.parquet").is_file(), bundle
        assert (bundle / "hybrid").is_dir(), bundle
    ndcg: dict[str, float] = dict(
        team.query("select run_uuid, value from latest_metrics where key = 'ndcg_at_10'")
    )
    assert set(ndcg) >= {run_a, run_b}
    tags = {(run, key): value for run, key, value in team.query("select run_uuid, key, value from tags")}

    report = tmp_path / "comparison.html"
    compared = team.storewise("compare", run_a, run_b, "--out", str(report))
    assert compared.returncode == 0, compared.stderr
    html = report.read_text()
    assert f"({run_a[:8]})" in html
    assert f"({run_b[:8]})" in html
    assert "lightfm.components" in html  # the setting the two colleagues changed

    # The first champion (forced: the tiny shop need not beat popularity), and a pricing champion.
    first = team.storewise("promote", "--model", "recommender", "--version", version_a, "--force")
    assert first.returncode == 0, first.stdout + first.stderr
    assert champion_in_database(team, RECOMMENDER) == version_a
    pricing_yaml = configs[0] / "pricing.yaml"
    pricing_settings = yaml.safe_load(pricing_yaml.read_text())
    pricing_settings["simulation"].update(
        {"days": 10, "seeds": [1]}
    )  # the flow, not the policy, is tested here
    pricing_yaml.write_text(yaml.safe_dump(pricing_settings))
    pricing = team.storewise(
        "train", "pricing", "--shop-dir", str(team.shop.root), STOREWISE_CONFIG_DIR=str(configs[0])
    )
    assert pricing.returncode == 0, pricing.stderr[-3000:]
    pricing_match = TRAINED.search(pricing.stdout)
    assert pricing_match is not None, pricing.stdout
    pricing_version = pricing_match.group(3)
    assert (
        team.storewise("promote", "--model", "pricing", "--version", pricing_version, "--force").returncode
        == 0
    )
    assert champion_in_database(team, PRICING) == pricing_version

    # The service loads both champions through the tracking server.
    port = free_port()
    log_path = tmp_path / "service.log"
    service = subprocess.Popen(
        [
            str(VENV_BIN / "storewise"),
            "serve",
            "--shop-dir",
            str(team.shop.root),
            "--port",
            str(port),
            "--workers",
            "1",
            "--reload-seconds",
            "2",
        ],
        env=team.env(
            BENTOML_HOME=str(tmp_path / "bentoml"), STOREWISE_MODEL_CACHE=str(tmp_path / "model-cache")
        ),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/readyz", service, log_path)
        assert served_versions(url) == {"recommender": version_a, "pricing": pricing_version}
        interactions = pd.read_parquet(team.shop.features / "interactions.parquet")
        customer = str(interactions[c.CUSTOMER_ID].value_counts().index[0])
        answer = httpx.post(f"{url}/recommend", json={"customer_id": customer, "k": 5}, timeout=30).json()
        assert answer["personalized"] is True
        assert len(answer["items"]) == 5

        # The second run goes through the gate; the expected decision is worked out from the
        # database: it must beat its baselines and the champion's NDCG@10 on the same data.
        primary = tags[(run_b, "primary_protocol")]
        expected = tags[(run_b, f"beats_baselines.{primary}")] == "true" and ndcg[run_b] > ndcg[run_a]
        gated = team.storewise("promote", "--model", "recommender", "--version", version_b)
        assert (gated.returncode == 0) == expected, gated.stdout + gated.stderr
        if not expected:
            assert champion_in_database(team, RECOMMENDER) == version_a
            assert (
                team.storewise(
                    "promote", "--model", "recommender", "--version", version_b, "--force"
                ).returncode
                == 0
            )
        assert champion_in_database(team, RECOMMENDER) == version_b

        # The running service picks the new champion up from the server, without a restart.
        deadline = time.time() + 90
        while served_versions(url)["recommender"] != version_b:
            assert time.time() < deadline, log_path.read_text()[-3000:]
            time.sleep(1)
        assert httpx.post(f"{url}/recommend", json={"customer_id": customer, "k": 5}, timeout=30).json()[
            "personalized"
        ]
    finally:
        if service.poll() is None:
            os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=30)
