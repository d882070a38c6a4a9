"""`storewise serve`: the HTTP service on the champion models (serving/)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import ShopDir, fail, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths


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
) -> None:
    """Serve the champion models over HTTP (BentoML): recommend, similar, price, quote, feedback."""
    import os
    import subprocess

    from inference.registry import tracking_uri

    shop = ShopPaths(shop_dir)
    shop.settings()  # fail now, with the file named, rather than in every worker
    env = {
        **os.environ,
        "STOREWISE_SHOP_DIR": str(shop.root.resolve()),
        "STOREWISE_WORKERS": str(workers),
        "STOREWISE_RELOAD_SECONDS": str(reload_seconds),
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "OMP_NUM_THREADS": "1",
    }
    say(f"serving {shop.root} on http://{host}:{port} (OpenAPI at /docs.json); logs in {shop.logs}")
    # bentoml beside this interpreter: `.venv/bin/storewise serve` works without an activated venv
    beside = Path(sys.executable).parent / "bentoml"
    bentoml = str(beside) if beside.exists() else shutil.which("bentoml")
    if bentoml is None:
        fail("the bentoml command was not found beside this Python nor on PATH; run `make install`")
    command = [str(bentoml), "serve", "serving.service:Storewise", "--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(command, env=env))


def register(root: typer.Typer) -> None:
    root.command("serve")(serve_command)
