"""The command line's conventions: `--version`, choices as enums (listed by `--help`, a wrong
one a usage error naming the option), and `--shop-dir` on every verb, `promote` included."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import mlflow
import typer

from cli.main import app
from features.manifest import read_manifest
from features.pipeline import build_features
from inference.registry import PRICING
from intake.demo.generate import GeneratedShop
from intake.demo.writer import write_generated_shop
from storewise.shop import ShopPaths
from tests.helpers import REPO


def storewise(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # a wide terminal: the usage error's box does not wrap the message
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_version_is_the_package_version() -> None:
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    done = storewise("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"storewise {expected}"


def test_a_choice_outside_the_enum_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    export = tmp_path / "x.csv"
    export.write_text("a\n1\n")
    wrong = storewise("data", "import", str(export), "--format", "shopify", "--shop-dir", str(tmp_path / "s"))
    assert wrong.returncode == 2
    assert "Invalid value for '--format'" in wrong.stderr
    assert "'shopify' is not one of 'online-retail', 'weekly-sales', 'canonical'" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert not (tmp_path / "s").exists(), "nothing written"
    consent = storewise("data", "import", str(export), "--format", "canonical", "--consent", "maybe")
    assert consent.returncode == 2
    assert "'--consent'" in consent.stderr
    model = storewise("promote", "--model", "ranker")
    assert model.returncode == 2
    assert "Invalid value for '--model'" in model.stderr
    assert "'ranker' is not one of 'recommender', 'pricing'" in model.stderr
    listed = storewise("data", "import", "--help")
    # the choices column wraps long lists; its ends are enough to see they are listed
    assert "<online-retail|" in listed.stdout
    assert "|canonical>" in listed.stdout
    assert "none|personalization|all" in listed.stdout


def verbs(group: object, prefix: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every leaf command under `group` (typer's own click), with its option names."""
    found: dict[str, list[str]] = {}
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            found |= verbs(command, (*prefix, name))
        else:
            found[" ".join((*prefix, name))] = [opt for param in command.params for opt in param.opts]
    return found


def test_every_verb_takes_shop_dir() -> None:
    every = verbs(typer.main.get_command(app))
    assert {"data import", "features build", "train pricing", "promote", "compare", "erase"} <= set(every)
    registry_only = {"experiment status", "experiment stop"}  # the experiment lives in the registry
    assert registry_only <= set(every)
    assert [verb for verb, options in every.items() if "--shop-dir" not in options] == sorted(registry_only)


def register_pricing_version(client: mlflow.MlflowClient, experiment: str, data_hash: str) -> str:
    """A registered pricing version whose run passes the gate, trained on `data_hash`."""
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "gate_score", 0.9)
    client.set_tag(run.info.run_id, "beats_baselines", "true")
    version = client.create_model_version(
        PRICING,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={"data_hash": data_hash},
    )
    return str(version.version)


def test_promote_takes_the_shop_of_the_model(
    tmp_path: Path, small_generated: GeneratedShop, mlflow_store: str
) -> None:
    shop = ShopPaths(tmp_path / "shop")
    write_generated_shop(shop, small_generated)
    build_features(shop)
    manifest = read_manifest(shop)
    assert manifest is not None
    # both stores named: an earlier test in this process may have set a global registry URI
    client = mlflow.MlflowClient(mlflow_store, registry_uri=mlflow_store)
    client.create_registered_model(PRICING)
    experiment = client.create_experiment("pricing")
    on_this_shop = register_pricing_version(client, experiment, str(manifest["input_hash"]))
    on_another = register_pricing_version(client, experiment, "another-shop")
    assert int(on_another) > int(on_this_shop), "the newest version is the other shop's"

    refused = storewise(
        "promote", "--model", "pricing", "--version", on_another, "--shop-dir", str(shop.root)
    )
    assert refused.returncode == 2
    assert f"'{PRICING}' version {on_another} was trained on other data" in refused.stderr
    assert client.get_registered_model(PRICING).aliases == {}

    promoted = storewise("promote", "--model", "pricing", "--shop-dir", str(shop.root))
    assert promoted.returncode == 0, promoted.stderr
    assert f"promoted {PRICING} version {on_this_shop} to champion" in promoted.stdout
    assert str(client.get_model_version_by_alias(PRICING, "champion").version) == on_this_shop

    no_features = storewise("promote", "--model", "pricing", "--shop-dir", str(tmp_path / "empty"))
    assert no_features.returncode == 2
    assert "no features" in no_features.stderr


def test_the_demand_family_choices_are_the_generators_families() -> None:
    from cli.data import DemandFamily
    from intake.demo.settings import FAMILIES

    assert [family.value for family in DemandFamily] == list(FAMILIES)
