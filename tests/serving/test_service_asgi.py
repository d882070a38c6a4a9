"""The service in-process: BentoML's ASGI app under a test client, the champions of a small
trained shop loaded as in production. Every malformed request is a 4xx naming what is
wrong (400 a field, 404 an item, 415 a body that is not JSON, 401/403 an admin endpoint
without the token); a price that cannot be audited (a full disk) is refused with a 503. The
real-server tests (test_service_e2e.py) are left with the flow."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest
from starlette.testclient import TestClient

from storewise import columns as c
from storewise.service_logs import PRICE_AUDIT, log_files, process_tag
from tests.servers import TrainedShop, storewise_app

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("server")]
TOKEN = "test-admin-token-0123456789"


@pytest.fixture(scope="module")
def client(trained_shop: TrainedShop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STOREWISE_SHOP_DIR", str(trained_shop.shop.root))
        patch.setenv("MLFLOW_TRACKING_URI", trained_shop.tracking_uri)
        patch.setenv("STOREWISE_RELOAD_SECONDS", "3600")
        patch.setenv("STOREWISE_ADMIN_TOKEN", TOKEN)
        patch.setenv("STOREWISE_MODEL_CACHE", str(tmp_path_factory.mktemp("model-cache")))
        app = storewise_app(patch)
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
    assert info.json()["model_versions"] == {
        "recommender": "1",
        "pricing": "1",
        "price_source": "pricing_model",
    }
    assert info.json()["alarms"] == []
    assert client.post("/similar", json={"item_id": item, "k": 2}).status_code == 200
    assert client.get("/readyz").status_code == 200


def cart(**line: object) -> dict[str, object]:
    return {"cart": [{"item_id": "x", "quantity": 1, **line}]}


def event(**fields: object) -> dict[str, object]:
    return {"events": [{"kind": "click", "source": "price", "item_id": "x", **fields}]}


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        ("/recommend", {"k": 1000}, ["k"]),
        ("/recommend", {"k": 0}, ["k"]),
        ("/recommend", {"k": -1}, ["k"]),
        ("/recommend", {"k": "ten"}, ["k"]),
        ("/recommend", {"k": "10"}, ["k"]),
        ("/recommend", {"k": 2.5}, ["k"]),
        ("/recommend", {"k": True}, ["k"]),
        ("/recommend", {"customer_id": "x" * 65}, ["customer_id"]),
        ("/recommend", {"customer_id": "C1\x00"}, ["customer_id"]),
        ("/recommend", {"context": {"cart": "not a list"}}, ["cart"]),
        ("/recommend", {"context": {"cart": [""]}}, ["cart"]),
        ("/recommend", {"context": {"recently_viewed": ["x"] * 201}}, ["recently_viewed"]),
        ("/recommend", {"context": {"include_categories": ["   "]}}, ["include_categories"]),
        ("/recommend", {"context": {"colour": "red"}}, ["colour"]),
        ("/recommend", {"k": 3, "colour": "red"}, ["colour"]),
        ("/info", {"verbose": True}, ["verbose"]),
        ("/similar", {}, ["item_id"]),
        ("/similar", {"item_id": ""}, ["item_id"]),
        ("/similar", {"item_id": "   "}, ["item_id"]),
        ("/similar", {"item_id": "x" * 65}, ["item_id"]),
        ("/similar", {"item_id": "a\nb"}, ["item_id"]),
        ("/similar", {"item_id": "x", "k": 101}, ["k"]),
        ("/price", {"item_ids": []}, ["item_ids"]),
        ("/price", {"item_ids": ["x"] * 201}, ["item_ids"]),
        ("/price", {"item_ids": [""]}, ["item_ids"]),
        ("/price", {"item_ids": ["x"], "cart": [{"item_id": "x", "quantity": 0}]}, ["quantity"]),
        ("/quote", {"cart": []}, ["cart"]),
        ("/quote", cart(quantity=-3), ["quantity"]),
        ("/quote", cart(quantity=0), ["quantity"]),
        ("/quote", cart(quantity=1001), ["quantity"]),
        ("/quote", cart(quantity="two"), ["quantity"]),
        ("/quote", cart(quantity="2"), ["quantity"]),
        ("/quote", cart(quantity=1.5), ["quantity"]),
        ("/quote", cart(item_id=""), ["item_id"]),
        ("/quote", cart(price=1.0), ["price"]),
        ("/quote", {"cart": [{"item_id": "x"}] * 201}, ["cart"]),
        ("/feedback", {"events": [{"kind": "stare", "source": "price", "item_id": "x"}]}, ["kind"]),
        ("/feedback", {"events": []}, ["events"]),
        ("/feedback", event(price=-1), ["price"]),
        ("/feedback", event(price=10_000_001), ["price"]),
        ("/feedback", event(quantity=0), ["quantity"]),
        ("/feedback", event(quantity=-2), ["quantity"]),
        ("/feedback", event(item_id=""), ["item_id"]),
        ("/feedback", event(request_id="r" * 65), ["request_id"]),
        ("/feedback", {"events": [{"kind": "click", "source": "price", "item_id": "x"}] * 1001}, ["events"]),
        # experiments, "not interested" and diversity (issue 18)
        ("/recommend", {"context": {"max_per_category": 0}}, ["max_per_category"]),
        ("/recommend", {"context": {"max_per_category": 101}}, ["max_per_category"]),
        ("/recommend", {"context": {"max_per_category": "2"}}, ["max_per_category"]),
        ("/recommend", {"context": {"max_per_category": 1.5}}, ["max_per_category"]),
        ("/recommend", {"context": {"max_per_category": -1}}, ["max_per_category"]),
        (
            "/feedback",
            {"events": [{"kind": "dismiss", "source": "recommendation", "item_id": "x"}]},
            ["customer_id"],
        ),
        ("/feedback", event(kind="dismiss", customer_id="   "), ["customer_id"]),
        ("/feedback", event(variant="treatment", experiment="exp-1"), ["variant"]),
        ("/feedback", event(experiment="exp-1"), ["experiment", "variant"]),
        ("/feedback", event(experiment="", variant="champion"), ["experiment"]),
        ("/feedback", event(experiment="e" * 65, variant="champion"), ["experiment"]),
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


def test_a_quantity_of_one_at_the_bounds_is_priced(client: TestClient, item: str) -> None:
    """The edges that are allowed: quantity 1 and 1,000, a 64-character customer id."""
    for quantity in (1, 1000):
        answer = client.post(
            "/quote", json={"cart": [{"item_id": item, "quantity": quantity}], "customer_id": "c" * 64}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["lines"][0]["amount"] == pytest.approx(body["lines"][0]["unit_price"] * quantity)
        assert body["total"] == pytest.approx(body["subtotal"] + body["shipping"])
        assert body["total"] > 0


@pytest.mark.parametrize("path", ["/reload", "/noop"])
def test_admin_endpoints_need_the_token(client: TestClient, path: str) -> None:
    assert client.post(path, json={}).status_code == 401
    wrong = client.post(path, json={}, headers={"authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    assert "STOREWISE_ADMIN_TOKEN" in wrong.text
    right = client.post(path, json={}, headers={"authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200, right.text


def test_storefront_endpoints_need_no_token(client: TestClient, item: str) -> None:
    for path, body in [
        ("/recommend", {"k": 2}),
        ("/similar", {"item_id": item}),
        ("/price", {"item_ids": [item]}),
        ("/quote", {"cart": [{"item_id": item}]}),
        ("/info", {}),
    ]:
        assert client.post(path, json=body).status_code == 200, path


def test_a_full_disk_under_the_audit_log_refuses_prices_and_raises_an_alarm(
    client: TestClient, trained_shop: TrainedShop, item: str
) -> None:
    """Decided: no price without its audit line. While the audit log cannot be written
    (its file is /dev/full, where every write fails with ENOSPC) every priced answer is a
    503 naming the log, /info lists the alarm, answers without prices go on; once the disk
    has room the next price is given and audited."""
    logs = trained_shop.shop.logs
    live = logs / f"{PRICE_AUDIT}.{process_tag()}.jsonl"
    assert client.post("/price", json={"item_ids": [item]}).status_code == 200
    aside = live.with_name("aside.jsonl")
    live.rename(aside)
    os.symlink("/dev/full", live)
    try:
        refused = [
            client.post(path, json=body)
            for path, body in [
                ("/price", {"item_ids": [item]}),
                ("/recommend", {"k": 3}),
                ("/quote", {"cart": [{"item_id": item}]}),
            ]
            * 5
        ]
        assert {response.status_code for response in refused} == {503}
        assert "price_audit" in refused[0].text
        assert "No space left on device" in refused[0].text
        assert client.post("/similar", json={"item_id": item}).status_code == 200
        alarms = client.post("/info", json={}).json()["alarms"]
        assert any("No space left on device" in alarm for alarm in alarms)
    finally:
        live.unlink()
        aside.rename(live)
    answer = client.post("/price", json={"item_ids": [item]})
    assert answer.status_code == 200
    rid = answer.json()["request_id"]
    assert any(rid in path.read_text() for path in log_files(logs, PRICE_AUDIT))
    assert client.post("/info", json={}).json()["alarms"] == []
    print(
        f"FIGURE audit disk full: {len(refused)}/{len(refused)} priced answers refused with 503 "
        "(none given unaudited), /similar answered, the alarm in /info, pricing back on the first write"
    )
