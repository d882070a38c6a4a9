"""A team's setup, for real: PostgreSQL (Debian's package) as MLflow's backend store, an
`mlflow server` with an artifact root, two trainers in two processes at once, a comparison,
promotions through the gate, and the service loading and reloading the champion through
the server. What the server stored is read back from PostgreSQL directly, not through MLflow.
The servers are tests/flows/team.py's.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from inference.registry import RECOMMENDER
from storewise import columns as c
from storewise.shop import ShopPaths
from tests.flows.team import (
    Team,
    Trained,
    champion_in_database,
    served_versions,
    stop_group,
    train_and_promote_pricing,
    train_two_at_once,
)
from tests.servers import wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("team")]


def check_what_the_server_stored(team: Team, a: Trained, b: Trained) -> None:
    """Both versions with their runs in PostgreSQL, and their files under the server's
    artifact root, uploaded through its proxy."""
    stored = team.query(
        "select version, run_id, storage_location from model_versions where name = %s", RECOMMENDER
    )
    assert {(str(version), run) for version, run, _ in stored} == {(a.version, a.run), (b.version, b.run)}
    for _, _, location in stored:
        assert location.startswith("mlflow-artifacts:/"), location
        bundle = team.artifacts / location.removeprefix("mlflow-artifacts:/") / "artifacts" / "bundle"
        assert (bundle / "catalog.parquet").is_file(), bundle
        assert (bundle / "hybrid").is_dir(), bundle


def check_comparison(team: Team, a: Trained, b: Trained, report: Path) -> None:
    compared = team.storewise("compare", a.run, b.run, "--out", str(report))
    assert compared.returncode == 0, compared.stderr
    html = report.read_text()
    assert f"({a.run[:8]})" in html
    assert f"({b.run[:8]})" in html
    assert "lightfm.components" in html  # the setting the two colleagues changed


def promote_through_the_gate(team: Team, a: Trained, b: Trained) -> None:
    """The expected decision is worked out from the database: the second run must beat its
    baselines and the champion's NDCG@10 on the same data."""
    ndcg = dict(team.query("select run_uuid, value from latest_metrics where key = 'ndcg_at_10'"))
    assert set(ndcg) >= {a.run, b.run}
    tags = {(run, key): value for run, key, value in team.query("select run_uuid, key, value from tags")}
    primary = tags[(b.run, "primary_protocol")]
    expected = tags[(b.run, f"beats_baselines.{primary}")] == "true" and ndcg[b.run] > ndcg[a.run]
    gated = team.storewise("promote", "--model", "recommender", "--version", b.version)
    assert (gated.returncode == 0) == expected, gated.stdout + gated.stderr
    if not expected:
        assert champion_in_database(team, RECOMMENDER) == a.version
        forced = team.storewise("promote", "--model", "recommender", "--version", b.version, "--force")
        assert forced.returncode == 0
    assert champion_in_database(team, RECOMMENDER) == b.version


def recommend(url: str, customer: str) -> dict[str, object]:
    return dict(httpx.post(f"{url}/recommend", json={"customer_id": customer, "k": 5}, timeout=30).json())


def test_two_trainers_compare_promote_and_serve_through_the_server(
    team: Team, team_shop: ShopPaths, tmp_path: Path
) -> None:
    a, b = train_two_at_once(team, team_shop, tmp_path)
    check_what_the_server_stored(team, a, b)
    check_comparison(team, a, b, tmp_path / "comparison.html")

    # The first champion (forced: the tiny shop need not beat popularity), and a pricing champion.
    first = team.storewise("promote", "--model", "recommender", "--version", a.version, "--force")
    assert first.returncode == 0, first.stdout + first.stderr
    assert champion_in_database(team, RECOMMENDER) == a.version
    pricing_version = train_and_promote_pricing(team, team_shop, a.config)

    # The service loads both champions through the tracking server.
    log = tmp_path / "service.log"
    service, url = team.serve(team_shop.root, log, workers=1, reload_seconds=2)
    try:
        wait_until_ready(f"{url}/readyz", service, log)
        assert served_versions(url) == {"recommender": a.version, "pricing": pricing_version}
        interactions = pd.read_parquet(team_shop.features / "interactions.parquet")
        customer = str(interactions[c.CUSTOMER_ID].value_counts().index[0])
        answer = recommend(url, customer)
        assert answer["personalized"] is True
        assert len(answer["items"]) == 5  # type: ignore[arg-type]

        promote_through_the_gate(team, a, b)
        # The running service picks the new champion up from the server, without a restart.
        deadline = time.time() + 90
        while served_versions(url)["recommender"] != b.version:
            assert time.time() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        assert recommend(url, customer)["personalized"]
    finally:
        stop_group(service)
