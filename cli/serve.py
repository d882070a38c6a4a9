"""`storewise serve`: the HTTP service on the champion models (serving/).

It never hangs on a service that cannot answer. Before BentoML starts it checks the
service's environment settings (one line naming a bad variable), the shop, and that the
tracking server answers and has a recommender champion: any of these is one line and exit
code 2 within seconds. Then it starts `bentoml serve` and watches it: once `/readyz`
answers 200 it says so; a worker that started without models (a bundle it could not read)
answers 503, and then the reason is printed, the server stopped, exit code 1. No pricing
champion is not an error: recommendations are served at list prices, and said so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from cli.common import ShopDir, fail, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths


def preflight(env: dict[str, str]) -> None:
    """Fail now, with one line, on what would leave the workers without models."""
    from inference.registry import PRICING, RECOMMENDER, TrackingUnavailableError, configure, find_champion
    from storewise.service_settings import ServiceSettingsError, read_service_settings, require_shop

    try:
        settings = read_service_settings(env)
        require_shop(settings)
    except ServiceSettingsError as error:
        fail(error.message)
    ShopPaths(settings.shop_dir).settings()  # a bad shop.yaml: named now, not in every worker
    uri = env["MLFLOW_TRACKING_URI"]
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        fail(f"no tracking store at {uri}: train a model (storewise train recommender) and promote it first")
    try:
        client = configure()
        recommender, pricing = find_champion(client, RECOMMENDER), find_champion(client, PRICING)
    except TrackingUnavailableError as error:
        fail(f"the tracking server {uri} does not answer: {error}")
    if recommender is None:
        fail(
            f"no champion for {RECOMMENDER} in {uri}: train one (storewise train recommender) "
            "and promote it (storewise promote)"
        )
    if pricing is None:
        say(
            f"no pricing model has passed the promotion gate yet ({PRICING} has no champion): "
            "recommendations and quotes use the list prices, and every answer says so"
        )


def probe(url: str) -> tuple[int | None, str]:
    """The status of GET `url` and the `error` of its body, (None, '') if nothing answered."""
    import logging

    import httpx

    # httpx logs every request at INFO: our own readiness probe is not news to the user
    logging.getLogger("httpx").setLevel(logging.WARNING)

    try:
        response = httpx.post(url, json={}, timeout=3) if url.endswith("/info") else httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None, ""
    try:
        reason = str(response.json().get("error", "")) if response.status_code != 200 else ""
    except ValueError:
        reason = response.text[:300]
    return response.status_code, reason


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def supervise(process: subprocess.Popen[bytes], url: str, startup_seconds: float) -> int:
    """Wait for readiness, then for the server to end; 1 (after stopping it) if a worker
    says it cannot answer or it is not ready in time."""
    deadline = time.monotonic() + startup_seconds
    while process.poll() is None:
        status, _ = probe(f"{url}/readyz")
        if status == 200:
            say(f"ready: {url}")
            return process.wait()
        if status == 503:
            reason = probe(f"{url}/info")[1] or "a worker reports it is not ready"
            typer.echo(f"error: {reason}", err=True)
            stop(process)
            return 1
        if time.monotonic() > deadline:
            typer.echo(f"error: not ready after {startup_seconds:.0f} s; stopped", err=True)
            stop(process)
            return 1
        time.sleep(0.5)
    return process.returncode


def serve_command(
    shop_dir: ShopDir = DEFAULT_SHOP_DIR,
    host: Annotated[
        str, typer.Option(help="Address to bind (localhost by default; 0.0.0.0 to expose it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 3000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 2,
    reload_seconds: Annotated[
        float, typer.Option(min=1, help="How often workers check for a new champion.")
    ] = 15,
    startup_seconds: Annotated[
        float, typer.Option(min=1, help="How long the workers may take to load the models.")
    ] = 300,
) -> None:
    """Serve the champion models over HTTP (BentoML): recommend, similar, price, quote, feedback."""
    from inference.registry import tracking_uri

    shop = ShopPaths(shop_dir)
    env = {
        **os.environ,
        "STOREWISE_SHOP_DIR": str(shop.root.resolve()),
        "STOREWISE_WORKERS": str(workers),
        "STOREWISE_RELOAD_SECONDS": str(reload_seconds),
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "OMP_NUM_THREADS": "1",
    }
    preflight(env)
    # bentoml beside this interpreter: `.venv/bin/storewise serve` works without an activated venv
    beside = Path(sys.executable).parent / "bentoml"
    bentoml = str(beside) if beside.exists() else shutil.which("bentoml")
    if bentoml is None:
        fail("the bentoml command was not found beside this Python nor on PATH; run `make install`")
    say(f"serving {shop.root} on http://{host}:{port} (OpenAPI at /docs.json); logs in {shop.logs}")
    command = [str(bentoml), "serve", "serving.service:Storewise", "--host", host, "--port", str(port)]
    # its own process group: stopped as a whole, by us, on Ctrl-C, a SIGTERM or SIGHUP to us
    # (a supervisor stopping `storewise serve`) or a failed start
    process = subprocess.Popen(command, env=env, start_new_session=True)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stopped_by_signal)
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    try:
        code = supervise(process, f"http://{probe_host}:{port}", startup_seconds)
    except KeyboardInterrupt:
        code = 0
    finally:
        stop(process)
    raise typer.Exit(code)


def stopped_by_signal(signum: int, _frame: object) -> None:
    for again in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(again, signal.SIG_IGN)  # once is enough: let the stop finish
    raise KeyboardInterrupt  # unwinds to the `finally` that stops the server


def register(root: typer.Typer) -> None:
    root.command("serve")(serve_command)
