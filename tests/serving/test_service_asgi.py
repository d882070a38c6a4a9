"""The service in-process: BentoML's ASGI app under a test client, the champions of a small
trained shop loaded as in production. Every malformed request is a 4xx naming what is
wrong (400 a field, 404 an item, 415 a body that is not JSON); the real-server tests
(test_service_e2e.py) are left with the flow."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pandas as pd
import pytest
from starlette.testclient import TestClient

from storewise import columns as c
from tests.servers import TrainedShop

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("server")]


@pytest.fixture(scope="module")
def client(trained_shop: TrainedShop) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STOREWISE_SHOP_DIR", str(trained_shop.shop.root))
        patch.setenv("MLFLOW_TRACKING_URI", trained_shop.tracking_uri)
        patch.setenv("STOREWISE_RELOAD_SECONDS", "3600")
        from serving.service import Storewise

        app = Storewise.to_asgi()  # type: ignore[attr-defined]  # added by @bentoml.service
        with TestClient(app, raise_server_exceptions=False) as test_client:
            yield test_client


@pytest.fixture(scope="module")
def item(trained_shop: TrainedShop) -> str:
    return str(pd.read_parquet(trained_shop.shop.table(c.PRODUCTS))[c.ITEM_ID].iloc[0])


def names(response: httpx.Response, *fields: str) -> bool:
    """The error body names every one of `fields`."""
    return all(f'"{field}"' in response.text or f"'{field}'" in response.text for field in fields)


def test_the_app_answers_in_process(client: TestClient, item: str) -> None:
    info = client.post("/info", json={})
    assert info.status_code == 200
    assert info.json()["model_versions"] == {"recommender": "1", "pricing": "1"}
    assert client.post("/similar", json={"item_id": item, "k": 2}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        ("/recommend", {"k": 1000}, ["k"]),
        ("/recommend", {"k": 0}, ["k"]),
        ("/recommend", {"k": "ten"}, ["k"]),
        ("/recommend", {"customer_id": "x" * 65}, ["customer_id"]),
        ("/recommend", {"context": {"cart": "not a list"}}, ["cart"]),
        ("/similar", {}, ["item_id"]),
        ("/similar", {"item_id": ""}, ["item_id"]),
        ("/price", {"item_ids": []}, ["item_ids"]),
        ("/quote", {"cart": []}, ["cart"]),
        ("/quote", {"cart": [{"item_id": "x", "quantity": "two"}]}, ["quantity"]),
        ("/feedback", {"events": [{"kind": "stare", "source": "price", "item_id": "x"}]}, ["kind"]),
        ("/feedback", {"events": []}, ["events"]),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_field(
    client: TestClient, path: str, body: dict[str, object], fields: list[str]
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert names(response, *fields), response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/similar", {"item_id": "NO-SUCH-ITEM"}),
        ("/price", {"item_ids": ["{item}", "NO-SUCH-ITEM"]}),
        ("/quote", {"cart": [{"item_id": "NO-SUCH-ITEM", "quantity": 1}]}),
        ("/recommend", {"context": {"recently_viewed": ["NO-SUCH-ITEM"]}}),
    ],
)
def test_an_unknown_item_is_a_404_naming_it(
    client: TestClient, item: str, path: str, body: dict[str, object]
) -> None:
    filled = httpx.Request("POST", "http://x", json=body).content.decode().replace("{item}", item)
    response = client.post(path, content=filled, headers={"content-type": "application/json"})
    assert response.status_code == 404, response.text
    assert "NO-SUCH-ITEM" in response.text


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"k=3", "application/x-www-form-urlencoded", 415),
        (b"--x\r\n", "multipart/form-data", 415),
        (b"hello", "text/plain", 415),
    ],
)
def test_a_body_that_is_not_json_is_refused(
    client: TestClient, content: bytes, content_type: str, status: int
) -> None:
    response = client.post("/recommend", content=content, headers={"content-type": content_type})
    assert response.status_code == status, response.text
