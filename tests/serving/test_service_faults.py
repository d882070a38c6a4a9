"""Faults a running worker survives, each on a copy of the trained shop's tracking store
(the shared one is not touched): no pricing champion (list prices, said in every answer),
a new champion whose bundle is missing or broken (the models served stay), the tracking
server down during a reload check (answers go on, one warning, recovery when it is back).
Each prints a `FIGURE` line (run with `-s` to see them)."""

from __future__ import annotations

import logging
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from starlette.testclient import TestClient

from inference.registry import CHAMPION, PRICING, RECOMMENDER, configure, find_champion
from serving.state import ServingState
from storewise import columns as c
from storewise.service_settings import ServiceSettings
from tests.servers import TrainedShop, free_port, storewise_app

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("server")]


@pytest.fixture
def store(trained_shop: TrainedShop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A copy of the trained shop's tracking store (the bundles stay where they are)."""
    copy = tmp_path / "mlflow.db"
    shutil.copy(trained_shop.tracking_uri.removeprefix("sqlite:///"), copy)
    uri = f"sqlite:///{copy}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri
    mlflow.set_tracking_uri(trained_shop.tracking_uri)


def settings(trained_shop: TrainedShop, tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        shop_dir=trained_shop.shop.root, model_cache=tmp_path / "model-cache", reload_seconds=3600
    )


def customers(trained_shop: TrainedShop) -> list[str]:
    interactions = pd.read_parquet(trained_shop.shop.features / "interactions.parquet")
    return [str(customer) for customer in interactions[c.CUSTOMER_ID].drop_duplicates().iloc[:50]]


def test_without_a_pricing_champion_answers_come_at_list_prices_and_say_so(
    store: str, trained_shop: TrainedShop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = configure()
    pricing = find_champion(client, PRICING)
    assert pricing is not None
    client.delete_registered_model_alias(PRICING, CHAMPION)  # as if none had passed the gate
    products = pd.read_parquet(trained_shop.shop.table(c.PRODUCTS)).set_index(c.ITEM_ID)[c.LIST_PRICE]
    item = str(products.index[0])
    for name, value in {
        "STOREWISE_SHOP_DIR": str(trained_shop.shop.root),
        "STOREWISE_RELOAD_SECONDS": "3600",
        "STOREWISE_MODEL_CACHE": str(tmp_path / "model-cache"),
    }.items():
        monkeypatch.setenv(name, value)
    with TestClient(storewise_app(monkeypatch), raise_server_exceptions=False) as http:
        answers = {
            path: http.post(path, json=body)
            for path, body in [
                ("/recommend", {"k": 3}),
                ("/similar", {"item_id": item, "k": 2}),
                ("/price", {"item_ids": [item]}),
                ("/quote", {"cart": [{"item_id": item, "quantity": 2}]}),
                ("/info", {}),
            ]
        }
        assert all(answer.status_code == 200 for answer in answers.values()), answers
        for path, answer in answers.items():
            assert answer.json()["model_versions"]["price_source"] == "list_prices", path
            assert answer.json()["model_versions"]["pricing"] is None, path
        assert "no pricing model has passed the promotion gate" in answers["/info"].json()["price_note"]
        price = answers["/price"].json()["prices"][0]
        assert price["base_price"] == pytest.approx(round(float(products[item]), 2))
        assert price["base_reason"].startswith("list price")
        for row in answers["/recommend"].json()["items"]:
            assert row["base_price"] == pytest.approx(round(float(products[row["item_id"]]), 2))
        assert http.get("/readyz").status_code == 200

    # a pricing model promoted later is picked up by the next check
    state = ServingState(settings(trained_shop, tmp_path))
    assert state.require().price_source == "list_prices"
    client.set_registered_model_alias(PRICING, CHAMPION, pricing)
    assert state.reload_if_changed()
    assert state.require().price_source == "pricing_model"
    assert state.require().pricing_version == pricing


def errors_in(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == level]


def test_a_new_champion_with_a_missing_or_broken_bundle_leaves_the_models_served(
    store: str, trained_shop: TrainedShop, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = ServingState(settings(trained_shop, tmp_path))
    served = state.require()
    client = configure()
    no_bundle = tmp_path / "no-bundle"
    (no_bundle / "artifacts").mkdir(parents=True)
    (no_bundle / "MLmodel").write_text("flavors: {}\n")
    (cached,) = (tmp_path / "model-cache").glob(f"*/{RECOMMENDER}/{served.recommender_version}")
    broken = tmp_path / "broken"
    shutil.copytree(cached, broken)
    (broken / "artifacts" / "bundle" / "hybrid" / "arrays.npz").write_bytes(b"not an npz file")
    people = customers(trained_shop)
    for kind, source in (("missing", no_bundle), ("broken", broken)):
        version = client.create_model_version(RECOMMENDER, source=str(source)).version
        client.set_registered_model_alias(RECOMMENDER, CHAMPION, version)
        caplog.clear()
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            assert state.reload_if_changed() is False
            timings.append(time.perf_counter() - started)
        answered = sum(bool(state.require().recommendations.recommend(who, 5).items) for who in people)
        errors = errors_in(caplog, logging.ERROR)
        assert state.require() is served  # the same snapshot, the same models
        assert len(errors) == 1, errors  # logged once, not at every check
        assert f"{RECOMMENDER} v{version}" in errors[0]
        assert answered == len(people)
        print(
            f"FIGURE broken champion ({kind} bundle, v{version}): 3 checks kept v{served.recommender_version}, "
            f"median check {statistics.median(timings) * 1000:.0f} ms, {answered}/{len(people)} answered, "
            f"{len(errors)} error logged"
        )
    client.set_registered_model_alias(RECOMMENDER, CHAMPION, served.recommender_version)
    assert state.reload_if_changed() is False
    assert state.broken == {}


class TrackingServer:
    """MLflow's own tracking server app (what `mlflow server` runs) under uvicorn in a
    thread, so it can be stopped and started again in a fraction of a second."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: object = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn
        from mlflow.server.fastapi_app import app

        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 60
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        assert server.started, "the tracking server did not start"
        self.server = server

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        assert self.thread is not None
        self.thread.join(timeout=30)


def test_the_tracking_server_down_during_reload_checks(
    store: str,
    trained_shop: TrainedShop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("_MLFLOW_SERVER_FILE_STORE", store)
    monkeypatch.setenv("_MLFLOW_SERVER_REGISTRY_STORE", store)
    monkeypatch.setenv("_MLFLOW_SERVER_SERVE_ARTIFACTS", "false")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    tracking = TrackingServer(free_port())
    tracking.start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{tracking.port}")
    state = ServingState(settings(trained_shop, tmp_path))
    served = state.require()
    people = customers(trained_shop)

    tracking.stop()
    caplog.clear()
    timings = []
    answered = 0
    for _ in range(5):
        started = time.perf_counter()
        assert state.reload_if_changed() is False
        timings.append(time.perf_counter() - started)
        answered += sum(bool(state.require().recommendations.recommend(who, 5).items) for who in people)
    warnings = errors_in(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings  # once for the outage
    assert "tracking server unreachable" in warnings[0]
    assert state.require() is served
    assert state.tracking_down_since is not None
    assert answered == 5 * len(people)

    caplog.clear()
    caplog.set_level(logging.INFO, logger="storewise.serving")
    tracking.start()  # back
    assert state.reload_if_changed() is False
    assert any("reachable again" in line for line in errors_in(caplog, logging.INFO))
    assert state.tracking_down_since is None
    assert state.require().recommender_version == served.recommender_version
    tracking.stop()
    print(
        f"FIGURE tracking server down: 5 reload checks, median {statistics.median(timings) * 1000:.0f} ms "
        f"(max {max(timings) * 1000:.0f} ms), {answered}/{5 * len(people)} answers during the outage, "
        f"{len(warnings)} warning, recovered on the first check after it came back"
    )


def test_one_local_copy_per_model_version_and_no_download_left_behind(
    store: str, trained_shop: TrainedShop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from inference.registry import load_champion

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # every temporary directory lands here
    cache = tmp_path / "model-cache"
    state = ServingState(settings(trained_shop, tmp_path))
    served = state.require()
    ServingState(settings(trained_shop, tmp_path))  # a second worker, or a restart: no new copy

    def cached() -> list[str]:
        return sorted(
            f"{path.parent.name}/{path.name}" for path in cache.glob("*/*/*") if not path.name.startswith(".")
        )

    assert cached() == [f"{PRICING}/{served.pricing_version}", f"{RECOMMENDER}/{served.recommender_version}"]
    # a new pricing champion: that version alone is downloaded, the recommender is reused
    client = configure()
    (pricing_copy,) = cache.glob(f"*/{PRICING}/{served.pricing_version}")
    version = client.create_model_version(PRICING, source=str(pricing_copy)).version
    client.set_registered_model_alias(PRICING, CHAMPION, version)
    assert state.reload_if_changed()
    assert state.require().recommendations is served.recommendations
    assert cached() == sorted(
        [
            f"{PRICING}/{served.pricing_version}",
            f"{PRICING}/{version}",
            f"{RECOMMENDER}/{served.recommender_version}",
        ]
    )
    # the CLI's way (no cache) reads a download and deletes it
    load_champion(RECOMMENDER)
    assert list(scratch.iterdir()) == []
    print(
        f"FIGURE model cache: {len(cached())} copies for {len(cached())} versions after 2 starts and a reload"
    )


def children_of(pid: int) -> list[int]:
    found = []
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            if path.read_text().rsplit(")", 1)[-1].split()[1] == str(pid):
                found.append(int(path.parent.name))
        except (OSError, IndexError):
            continue  # a process that ended while we looked
    return found


def test_stopping_storewise_serve_stops_the_server_it_started(
    trained_shop: TrainedShop, tmp_path: Path
) -> None:
    """A supervisor's SIGTERM to `storewise serve` (not to its process group) must not leave
    BentoML running: the server has its own process group, so the wrapper stops it."""
    import os
    import signal
    import subprocess
    import sys

    from tests.servers import wait_until_ready

    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained_shop.tracking_uri,
        "STOREWISE_MODEL_CACHE": str(tmp_path / "model-cache"),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }
    command = [
        str(Path(sys.executable).parent / "storewise"),
        *("serve", "--shop-dir", str(trained_shop.shop.root), "--port", str(port), "--workers", "1"),
    ]
    wrapper = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", wrapper, log)
        servers = children_of(wrapper.pid)
        assert len(servers) == 1, servers
        started = time.perf_counter()
        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(timeout=60) == 0
        gone = not Path(f"/proc/{servers[0]}").exists()
        print(
            f"FIGURE storewise serve stopped by SIGTERM: it and its server gone in {time.perf_counter() - started:.1f} s"
        )
        assert gone, "the BentoML server outlived storewise serve"
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
