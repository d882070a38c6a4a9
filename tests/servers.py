"""Helpers for tests that start real servers on localhost."""

from __future__ import annotations

import functools
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from storewise.service_settings import ServiceSettings, read_service_settings
from storewise.shop import ShopPaths


@dataclass(frozen=True)
class TrainedShop:
    """A shop with its models trained and promoted in `tracking_uri` (tests/serving/conftest.py)."""

    root: Path
    shop: ShopPaths
    config: Path
    tracking_uri: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    """Poll `url` until it answers 200; fail with the server's log if it exits or never does."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            pytest.fail(f"the server exited: {log.read_text()[-3000:]}")
        time.sleep(1)
    pytest.fail(f"the server did not become ready: {log.read_text()[-3000:]}")


def storewise_app(patch: pytest.MonkeyPatch, settings: ServiceSettings | None = None) -> Any:
    """The service's ASGI app, made once per test process: BentoML registers its metrics in
    a process-wide registry, so a second app would collide. Each `TestClient(app)` context
    runs the app's startup, which makes a new service instance from `settings` (default:
    read from the environment now). The module reads its settings once, when first
    imported, and whichever test imported it first would otherwise decide them for all."""
    import serving.service as service

    patch.setattr(service, "SETTINGS", settings if settings is not None else read_service_settings())
    return service_asgi_app()


@functools.cache
def service_asgi_app() -> Any:
    from serving.service import Storewise

    return Storewise.to_asgi()  # type: ignore[attr-defined]  # added by @bentoml.service
