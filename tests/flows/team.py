"""A team's servers for the flow tests: a PostgreSQL cluster (Debian's package) as MLflow's
backend store and an `mlflow server` with an artifact root in front of it, started in a
temporary folder and stopped afterwards; and what a test does with them (run the CLI
against the server, read PostgreSQL directly, start `storewise serve`).

PostgreSQL refuses to run as root, and pytest's temporary folders are root's alone, so the
cluster lives in a folder of its own that the postgres user owns.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from inference.registry import PRICING
from storewise.shop import ShopPaths
from tests.helpers import fast_config
from tests.servers import free_port, wait_until_ready

VENV_BIN = Path(sys.executable).parent
TRAINED = re.compile(r"wrote run (\w+) and registered storewise-(\w+) version (\d+)")


def postgres_bin() -> Path | None:
    """Debian installs the server binaries outside PATH, one folder per major version."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def require_program(path: Path | str | None, package: str) -> None:
    """Skip on a developer's machine without Debian's `package`; fail in CI, which installs it."""
    if path is not None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{package} is not installed: .ci/run installs Debian's {package} package")
    pytest.skip(f"{package} is not installed (apt-get install {package}); .ci/run installs it")


def run_or_fail(command: list[str], timeout: float = 120) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group a server was started in (start_new_session=True)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


@dataclass
class Team:
    url: str  # the MLflow tracking server
    database: str  # libpq connection string of its backend store
    artifacts: Path
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

    def serve(
        self, shop: Path, log: Path, *, workers: int, reload_seconds: float
    ) -> tuple[subprocess.Popen[bytes], str]:
        """`storewise serve` against the tracking server on a free port, ready to answer."""
        port = free_port()
        process = subprocess.Popen(
            [
                str(VENV_BIN / "storewise"),
                "serve",
                "--shop-dir",
                str(shop),
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--reload-seconds",
                str(reload_seconds),
            ],
            env=self.env(
                BENTOML_HOME=str(log.parent / f"bentoml-{port}"),
                STOREWISE_MODEL_CACHE=str(log.parent / f"model-cache-{port}"),
            ),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return process, f"http://127.0.0.1:{port}"


def champion_in_database(team: Team, name: str) -> str:
    rows = team.query(
        "select version from registered_model_aliases where name = %s and alias = 'champion'", name
    )
    return str(rows[0][0]) if rows else "none"


def served_versions(url: str) -> dict[str, str]:
    versions = httpx.post(f"{url}/info", json={}, timeout=10).json()["model_versions"]
    return {name: versions[name] for name in ("recommender", "pricing")}


@dataclass(frozen=True)
class Trained:
    run: str
    version: str
    config: Path


def train_recommender(team: Team, shop: ShopPaths, config: Path) -> Trained:
    trained = team.storewise(
        "train", "recommender", "--shop-dir", str(shop.root), STOREWISE_CONFIG_DIR=str(config)
    )
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    match = TRAINED.search(trained.stdout)
    assert match is not None, trained.stdout
    return Trained(match.group(1), match.group(3), config)


def train_two_at_once(team: Team, shop: ShopPaths, tmp_path: Path) -> tuple[Trained, Trained]:
    """Two colleagues train at once, with different settings, against the same server."""
    configs = [fast_config(tmp_path / "a"), fast_config(tmp_path / "b", **{"lightfm.components": 24})]
    command = [str(VENV_BIN / "storewise"), "train", "recommender", "--shop-dir", str(shop.root)]
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
    return Trained(run_a, version_a, configs[0]), Trained(run_b, version_b, configs[1])


def train_and_promote_pricing(team: Team, shop: ShopPaths, config: Path) -> str:
    pricing_yaml = config / "pricing.yaml"
    settings = yaml.safe_load(pricing_yaml.read_text())
    settings["simulation"].update({"days": 10, "seeds": [1]})  # the flow, not the policy, is tested here
    pricing_yaml.write_text(yaml.safe_dump(settings))
    pricing = team.storewise(
        "train", "pricing", "--shop-dir", str(shop.root), STOREWISE_CONFIG_DIR=str(config)
    )
    assert pricing.returncode == 0, pricing.stderr[-3000:]
    match = TRAINED.search(pricing.stdout)
    assert match is not None, pricing.stdout
    version = match.group(3)
    assert team.storewise("promote", "--model", "pricing", "--version", version, "--force").returncode == 0
    assert champion_in_database(team, PRICING) == version
    return version


@dataclass(frozen=True)
class PostgresCluster:
    binaries: Path
    data: Path
    as_postgres: list[str]  # the command prefix that runs a program as the postgres user
    port: int

    def stop(self) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
            capture_output=True,
        )


def start_postgres(binaries: Path, folder: Path) -> PostgresCluster:
    """A new cluster in `folder` on a free port, trusting local connections as `storewise`,
    with an empty `mlflow` database."""
    folder.mkdir()
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    cluster = PostgresCluster(binaries, folder / "data", as_postgres, free_port())
    initdb = [
        str(binaries / "initdb"),
        "-D",
        str(cluster.data),
        "-U",
        "storewise",
        "--auth=trust",
        "-E",
        "UTF8",
    ]
    run_or_fail([*as_postgres, *initdb])
    options = f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1"
    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(cluster.data), "-l", str(folder / "server.log")]
    run_or_fail([*as_postgres, *pg_ctl, "-w", "-o", options, "start"])
    try:
        run_or_fail(
            [
                str(binaries / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(cluster.port),
                "-U",
                "storewise",
                "mlflow",
            ]
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def start_mlflow_server(root: Path, database_port: int) -> tuple[subprocess.Popen[bytes], str]:
    """`mlflow server` on the cluster's `mlflow` database, proxying `root/artifacts`; it
    creates its tables while the caller goes on (wait for `/health` before using it)."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"postgresql://storewise@127.0.0.1:{database_port}/mlflow",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        # Storewise runs no jobs on the server; enabled, MLflow keeps seven job consumers
        # polling (about half a core on this machine)
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=(root / "mlflow-server.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=root,
    )
    return server, f"http://127.0.0.1:{port}"


@contextmanager
def team_servers() -> Iterator[tuple[Team, subprocess.Popen[bytes]]]:
    """PostgreSQL and the tracking server, started (the server possibly still creating its
    tables: see `wait_for`), then stopped and removed."""
    binaries = postgres_bin()
    require_program(binaries, "postgresql")
    assert binaries is not None
    root = Path(tempfile.mkdtemp(prefix="storewise-team-"))
    root.chmod(0o755)
    cluster = start_postgres(binaries, root / "postgres")
    server: subprocess.Popen[bytes] | None = None
    try:
        server, url = start_mlflow_server(root, cluster.port)
        database = f"host=127.0.0.1 port={cluster.port} user=storewise dbname=mlflow"
        yield Team(url, database, root / "artifacts", root), server
    finally:
        if server is not None:
            stop_group(server)
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_for(team: Team, server: subprocess.Popen[bytes]) -> None:
    wait_until_ready(f"{team.url}/health", server, team.root / "mlflow-server.log")
