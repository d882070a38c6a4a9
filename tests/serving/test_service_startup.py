"""A service that cannot start says why in one line and never hangs: bad environment
settings, no champion, a champion whose bundle cannot be read. `storewise serve` exits
non-zero within seconds; a bare `bentoml serve` never reports readiness it does not have
and answers 503 with the reason instead of hanging."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from inference.registry import CHAMPION, RECOMMENDER
from storewise.service_settings import (
    ServiceSettings,
    ServiceSettingsError,
    read_service_settings,
    require_shop,
)
from storewise.shop import ShopPaths
from tests.servers import free_port

VENV_BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("STOREWISE_WORKERS", "abc", "valid integer"),
        ("STOREWISE_WORKERS", "0", "greater than or equal to 1"),
        ("STOREWISE_WORKERS", "2.5", "valid integer"),
        ("STOREWISE_WORKERS", "65", "less than or equal to 64"),
        ("STOREWISE_RELOAD_SECONDS", "0", "greater than or equal to 1"),
        ("STOREWISE_RELOAD_SECONDS", "soon", "valid number"),
        ("STOREWISE_ADMIN_TOKEN", "short", "at least 16 characters"),
        ("STOREWISE_ADMIN_TOKEN", "sixteen chars with spaces", "without spaces"),
        ("STOREWISE_LOG_ROTATE", "weekly", "'size' or 'day'"),
        ("STOREWISE_LOG_MAX_MB", "-1", "greater than 0"),
        ("STOREWISE_LOG_KEEP", "many", "valid integer"),
        ("STOREWISE_TRACKING_TIMEOUT", "0", "greater than 0"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ServiceSettingsError) as raised:
        read_service_settings({variable: value})
    message = raised.value.message
    assert message.startswith(f"{variable}=")
    assert says in message
    assert "\n" not in message
    if variable == "STOREWISE_ADMIN_TOKEN":
        assert value not in message  # a credential is never echoed


def test_good_settings_and_defaults(tmp_path: Path) -> None:
    settings = read_service_settings(
        {
            "STOREWISE_WORKERS": "4",
            "STOREWISE_ADMIN_TOKEN": "x" * 16,
            "STOREWISE_LOG_ROTATE": "day",
            "OTHER": "1",
        }
    )
    assert (settings.workers, settings.admin_token, settings.log_rotate) == (4, "x" * 16, "day")
    assert read_service_settings({"STOREWISE_ADMIN_TOKEN": ""}).admin_token is None
    with pytest.raises(ServiceSettingsError, match=r"STOREWISE_SHOP_DIR=.*not a shop"):
        require_shop(ServiceSettings(shop_dir=tmp_path))


def run(
    command: list[str], env: dict[str, str], timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.perf_counter() - started


@pytest.fixture
def empty_store(tmp_path: Path) -> str:
    """A tracking store with nothing registered."""
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    MlflowClient(uri, registry_uri=uri).search_registered_models()
    return uri


def environment(shop: ShopPaths, store: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": store,
        "STOREWISE_SHOP_DIR": str(shop.root),
        "STOREWISE_MODEL_CACHE": str(tmp_path / "cache"),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        **extra,
    }


def test_storewise_serve_with_a_bad_variable_stops_at_once(
    small_shop: ShopPaths, empty_store: str, tmp_path: Path
) -> None:
    env = environment(small_shop, empty_store, tmp_path, STOREWISE_LOG_KEEP="-1")
    done, seconds = run([str(VENV_BIN / "storewise"), "serve", "--shop-dir", str(small_shop.root)], env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: STOREWISE_LOG_KEEP='-1': Input should be greater than or equal to 0"
    ]
    assert seconds < 30


@pytest.mark.slow
def test_bare_bentoml_serve_with_a_bad_variable_is_one_line_not_a_traceback(
    small_shop: ShopPaths, empty_store: str, tmp_path: Path
) -> None:
    env = environment(small_shop, empty_store, tmp_path, STOREWISE_WORKERS="abc")
    command = [str(VENV_BIN / "bentoml"), "serve", "serving.service:Storewise", "--port", str(free_port())]
    done, _ = run(command, env)
    assert done.returncode != 0
    assert "error: STOREWISE_WORKERS='abc': Input should be a valid integer" in done.stderr
    assert "Traceback" not in done.stderr


def test_storewise_serve_without_a_champion_exits_within_seconds(
    small_shop: ShopPaths, empty_store: str, tmp_path: Path
) -> None:
    env = environment(small_shop, empty_store, tmp_path)
    command = [
        str(VENV_BIN / "storewise"),
        "serve",
        "--shop-dir",
        str(small_shop.root),
        "--port",
        str(free_port()),
    ]
    done, seconds = run(command, env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: no champion for {RECOMMENDER} in {empty_store}")
    print(f"FIGURE storewise serve without a champion: exit 2 after {seconds:.1f} s, one line")
    assert seconds < 30
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'nothing-here.db'}"
    done, _ = run(command, env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: no tracking store at {env['MLFLOW_TRACKING_URI']}: train a model (storewise train "
        "recommender) and promote it first"
    ]
    assert not (tmp_path / "nothing-here.db").exists()


def register_broken_champion(store: str, tmp_path: Path) -> None:
    """A recommender champion whose bundle is missing (its files were deleted, say)."""
    client = MlflowClient(store, registry_uri=store)
    client.create_registered_model(RECOMMENDER)
    source = tmp_path / "gone"
    (source / "artifacts").mkdir(parents=True)
    version = client.create_model_version(RECOMMENDER, source=str(source)).version
    client.set_registered_model_alias(RECOMMENDER, CHAMPION, version)


@pytest.mark.slow
def test_storewise_serve_with_an_unreadable_champion_stops_with_the_reason(
    small_shop: ShopPaths, empty_store: str, tmp_path: Path
) -> None:
    register_broken_champion(empty_store, tmp_path)
    env = environment(small_shop, empty_store, tmp_path, STOREWISE_WORKERS="1")
    command = [
        str(VENV_BIN / "storewise"),
        "serve",
        "--shop-dir",
        str(small_shop.root),
        "--port",
        str(free_port()),
    ]
    done, seconds = run(command, env, timeout=240)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"cannot load {RECOMMENDER} v1" in errors[0]
    assert "has no bundle" in errors[0]
    print(f"FIGURE storewise serve with an unreadable champion: exit 1 after {seconds:.1f} s: {errors[0]}")


@pytest.mark.slow
def test_bare_bentoml_serve_without_models_is_never_ready_and_says_why(
    small_shop: ShopPaths, empty_store: str, tmp_path: Path
) -> None:
    port = free_port()
    env = environment(
        small_shop, empty_store, tmp_path, STOREWISE_WORKERS="1", STOREWISE_RELOAD_SECONDS="3600"
    )
    process = subprocess.Popen(
        [
            str(VENV_BIN / "bentoml"),
            "serve",
            "serving.service:Storewise",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        statuses = []
        deadline = time.time() + 120
        while time.time() < deadline and 503 not in statuses:
            try:
                statuses.append(httpx.get(f"{url}/readyz", timeout=2).status_code)
            except httpx.HTTPError:
                time.sleep(0.5)
        assert 503 in statuses
        assert 200 not in statuses
        answer = httpx.post(f"{url}/recommend", json={"k": 3}, timeout=5)
        assert answer.status_code == 503
        assert f"no champion for {RECOMMENDER}" in answer.json()["error"]
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 503
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
