"""The team's servers (tests/flows/team.py) and a small shop with its features, one set per
test module: each flow starts from an empty registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from features.pipeline import build_features
from intake.demo.generate import generate_shop
from intake.demo.writer import write_generated_shop
from storewise.shop import ShopPaths
from tests.flows.team import Team, team_servers, wait_for
from tests.helpers import SMALL


@pytest.fixture(scope="module")
def team(request: pytest.FixtureRequest) -> Iterator[Team]:
    with team_servers() as (team, server):
        request.getfixturevalue("team_shop")  # made while the server creates its tables
        wait_for(team, server)
        yield team


@pytest.fixture(scope="module")
def team_shop(tmp_path_factory: pytest.TempPathFactory) -> ShopPaths:
    shop = ShopPaths(tmp_path_factory.mktemp("team") / "shop")
    write_generated_shop(shop, generate_shop(SMALL))
    build_features(shop)
    return shop
