"""Experiments in the service, in-process on a copy of the trained shop and its tracking
store: the challenger answers the customers the salted hash gives it (worked out here
with hashlib, independently), the same on every request; guests and customers without
consent stay on the champion; feedback carries the variant; a price test's arms are the
same for everyone and marked in the audit; "not interested" holds from the next answer
on, for any reader of the shop's files; max_per_category spreads an answer."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import mlflow
import pandas as pd
import pytest
from starlette.testclient import TestClient

from inference.experiments import read_experiment, write_experiment, write_price_test
from inference.registry import PRICING, RECOMMENDER, configure
from serving.dismissals import Dismissals
from serving.state import ServingState
from storewise import columns as c
from storewise.experiments import Experiment, PriceTest, start_experiment, start_price_test
from storewise.service_logs import FEEDBACK, PRICE_AUDIT, log_files
from storewise.service_settings import ServiceSettings
from storewise.shop import ShopPaths
from tests.servers import TrainedShop, storewise_app
from training.online_promotion import promote_on_evidence

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("server")]


@dataclass
class Lab:
    client: TestClient
    shop: ShopPaths
    experiment: Experiment
    price_test: PriceTest
    customers: pd.DataFrame
    settings: ServiceSettings


def expected_variant(salt: str, customer: str, share: float) -> str:
    digest = hashlib.sha256(f"{salt}:{customer}".encode()).digest()
    return "challenger" if int.from_bytes(digest[:8], "big") / 2**64 < share else "champion"


@pytest.fixture(scope="module")
def lab(trained_shop: TrainedShop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("experiments")
    shutil.copytree(trained_shop.shop.root, root / "shop", ignore=shutil.ignore_patterns("logs"))
    shutil.copy(trained_shop.tracking_uri.removeprefix("sqlite:///"), root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    shop = ShopPaths(root / "shop")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        client = configure()
        champion = client.get_model_version_by_alias(RECOMMENDER, "champion")
        # the challenger: another registered version (of the same run, so it loads as fast)
        challenger = client.create_model_version(RECOMMENDER, str(champion.source), champion.run_id)
        experiment = start_experiment(RECOMMENDER, str(champion.version), str(challenger.version), 0.5)
        write_experiment(client, experiment)
        products = pd.read_parquet(shop.table(c.PRODUCTS))
        today = datetime.now(ZoneInfo(shop.settings().timezone)).date()
        price_test = start_price_test([str(products[c.ITEM_ID].iloc[0])], 0.045, today, 3, 0.10)
        write_price_test(client, PRICING, price_test)
        settings = ServiceSettings(shop_dir=shop.root, model_cache=root / "cache", reload_seconds=3600)
        with TestClient(storewise_app(patch, settings), raise_server_exceptions=False) as test_client:
            yield Lab(
                test_client, shop, experiment, price_test, pd.read_parquet(shop.table(c.CUSTOMERS)), settings
            )
    mlflow.set_tracking_uri(trained_shop.tracking_uri)


def personalizable(lab: Lab, count: int) -> list[str]:
    interactions = pd.read_parquet(lab.shop.features / "interactions.parquet")
    return [str(customer) for customer in interactions[c.CUSTOMER_ID].drop_duplicates().iloc[:count]]


def test_customers_are_split_by_the_salted_hash_and_stay_put(lab: Lab) -> None:
    answers = {}
    for customer in personalizable(lab, 60):
        first = lab.client.post("/recommend", json={"customer_id": customer, "k": 3}).json()
        second = lab.client.post("/recommend", json={"customer_id": customer, "k": 3}).json()
        assert first["variant"] == second["variant"] == expected_variant(lab.experiment.salt, customer, 0.5)
        assert first["experiment"] == lab.experiment.id
        version = lab.experiment.challenger if first["variant"] == "challenger" else lab.experiment.champion
        assert first["model_versions"]["recommender"] == version
        answers[customer] = first["variant"]
    assert {"champion", "challenger"} <= set(answers.values()), answers


def test_guests_and_customers_without_consent_stay_on_the_champion(lab: Lab) -> None:
    guest = lab.client.post("/recommend", json={"k": 3}).json()
    assert (guest["variant"], guest["experiment"]) == ("champion", None)
    refused = lab.customers.loc[~lab.customers[c.CONSENT_PERSONALIZATION], c.CUSTOMER_ID].iloc[:20]
    for customer in refused:
        answer = lab.client.post("/recommend", json={"customer_id": customer, "k": 3}).json()
        assert (answer["variant"], answer["experiment"]) == ("champion", None), customer
        assert answer["model_versions"]["recommender"] == lab.experiment.champion


def test_feedback_carries_the_variant_given_or_the_customers_assignment(lab: Lab) -> None:
    customer = personalizable(lab, 1)[0]
    shown = lab.client.post("/recommend", json={"customer_id": customer, "k": 2}).json()
    item = shown["items"][0]["item_id"]
    events = [
        {"kind": "impression", "source": "recommendation", "item_id": item, "customer_id": customer},
        {
            "kind": "click",
            "source": "recommendation",
            "item_id": item,
            "customer_id": customer,
            "experiment": shown["experiment"],
            "variant": shown["variant"],
        },
        {"kind": "impression", "source": "recommendation", "item_id": item},  # a guest: no experiment
    ]
    assert lab.client.post("/feedback", json={"events": events}).json() == {"accepted": 3}
    lines = [
        json.loads(line)
        for path in log_files(lab.shop.logs, FEEDBACK)
        for line in path.read_text().splitlines()
    ]
    mine = [line for line in lines if line["item_id"] == item][-3:]
    assert [(line["experiment"], line["variant"]) for line in mine] == [
        (lab.experiment.id, shown["variant"]),
        (lab.experiment.id, shown["variant"]),
        (None, None),
    ]


def test_a_price_test_prices_every_customer_alike_and_is_audited(lab: Lab) -> None:
    item = lab.price_test.items[0]
    today = datetime.now(ZoneInfo(lab.shop.settings().timezone)).date()
    digest = hashlib.sha256(f"{lab.price_test.salt}:{item}:{today.isoformat()}".encode()).digest()
    arm = "high" if int.from_bytes(digest[:8], "big") / 2**64 < 0.5 else "low"
    customers = [None, *personalizable(lab, 3)]
    prices = [
        lab.client.post("/price", json={"item_ids": [item], "customer_id": who}).json()["prices"][0]
        for who in customers
    ]
    assert len({price["base_price"] for price in prices}) == 1, "one base price for everyone"
    assert f"price test {lab.price_test.id}: {arm} arm today" in prices[0]["base_reason"]
    # an item outside the test, priced here so the check does not hang on the other tests' order
    products = pd.read_parquet(lab.shop.table(c.PRODUCTS))[c.ITEM_ID].astype(str)
    other = str(products[products != item].iloc[0])
    both = lab.client.post("/price", json={"item_ids": [item, other]}).json()["prices"]
    assert "price test" not in both[1]["base_reason"]
    audit = [
        json.loads(line)
        for path in log_files(lab.shop.logs, PRICE_AUDIT)
        for line in path.read_text().splitlines()
    ]
    marked = [line for line in audit if line.get("price_test") == lab.price_test.id]
    assert len(marked) >= len(customers)
    assert {line["arm"] for line in marked} == {arm}
    untested = [line for line in audit if line["item_id"] != item]
    assert untested
    assert all("price_test" not in line for line in untested)
    # the price moved by the step (within the guardrails and the .90 ending) from the policy's
    state = ServingState(lab.settings)
    base = float(state.require().pricing.price([item])["price"][0])
    expected = base * (1.045 if arm == "high" else 0.955)
    assert abs(prices[0]["base_price"] - expected) <= 1.0, (prices[0]["base_price"], base, arm)


def test_not_interested_holds_from_the_next_answer_for_every_reader(lab: Lab) -> None:
    customer = personalizable(lab, 5)[-1]
    before = lab.client.post("/recommend", json={"customer_id": customer, "k": 5}).json()
    dismissed = before["items"][0]["item_id"]
    event = {"kind": "dismiss", "source": "recommendation", "item_id": dismissed, "customer_id": customer}
    assert lab.client.post("/feedback", json={"events": [event]}).status_code == 200
    after = lab.client.post("/recommend", json={"customer_id": customer, "k": 5}).json()
    assert dismissed not in [item["item_id"] for item in after["items"]]
    assert len(after["items"]) == 5
    # another worker, another replica or a restart: a new reader of the same files
    assert Dismissals(lab.shop.logs).of(customer) == [dismissed]


def test_max_per_category_spreads_the_answer(lab: Lab) -> None:
    customer = personalizable(lab, 2)[-1]
    answer = lab.client.post(
        "/recommend", json={"customer_id": customer, "k": 6, "context": {"max_per_category": 1}}
    ).json()
    categories = [item["category"] for item in answer["items"]]
    assert len(categories) == len(set(categories)) > 1


def test_stopping_the_experiment_puts_everyone_back_on_the_champion(lab: Lab) -> None:
    state = ServingState(lab.settings)
    assert state.require().experiment == lab.experiment
    assert state.require().challenger is not None
    write_experiment(configure(), lab.experiment.stopped())
    assert state.reload_if_changed()
    assert state.require().experiment is None
    assert state.require().challenger is None
    write_experiment(configure(), lab.experiment)  # running again for the tests after this one


def storewise(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )


def test_the_shops_flow_start_watch_decide_from_the_command_line(lab: Lab) -> None:
    """status, a second start refused, a report from the storefront's feedback, promote on
    the experiment's evidence (refused while it says keep running), stop, bad input exit 2."""
    uri = str(configure().tracking_uri)
    status = storewise(uri, "experiment", "status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["id"] == lab.experiment.id
    again = storewise(uri, "experiment", "start", "--challenger", lab.experiment.challenger)
    assert again.returncode == 2
    assert "stop it first" in again.stderr
    # the storefront reports what 40 customers did with what they were shown
    events = []
    for customer in personalizable(lab, 40):
        shown = lab.client.post("/recommend", json={"customer_id": customer, "k": 3}).json()
        for item in shown["items"]:
            events.append(
                {
                    "kind": "impression",
                    "source": "recommendation",
                    "item_id": item["item_id"],
                    "customer_id": customer,
                    "experiment": shown["experiment"],
                    "variant": shown["variant"],
                }
            )
        events.append({**events[-1], "kind": "purchase", "price": shown["items"][-1]["price"]})
    assert lab.client.post("/feedback", json={"events": events}).status_code == 200
    report = storewise(uri, "report", "experiment", "--shop-dir", str(lab.shop.root))
    assert report.returncode == 0, report.stderr
    assert "decision: keep running" in report.stdout, report.stdout
    page = lab.shop.root / "reports" / "experiment" / lab.experiment.id / "index.html"
    assert f"wrote {page}" in report.stdout
    counts = pd.read_csv(page.parent / "variants.csv").set_index("variant")["customers"]
    shown_to = pd.Series([event["variant"] for event in events if event["kind"] == "purchase"]).value_counts()
    assert (counts.reindex(shown_to.index) >= shown_to).all()
    refused = storewise(uri, "promote", "--experiment", "--shop-dir", str(lab.shop.root))
    assert refused.returncode == 1, refused.stdout
    assert "says keep running" in refused.stdout, refused.stdout
    for bad, says in [
        (["experiment", "start", "--challenger", "999", "--share", "0.1"], "stop it first"),
        (["experiment", "start", "--model", "pricing", "--items", "NO-SUCH"], "--items"),
        (["experiment", "start", "--model", "shoes"], "--model"),
    ]:
        done = storewise(uri, *bad, "--shop-dir", str(lab.shop.root))
        assert done.returncode == 2, done.stderr
        assert says in done.stderr, done.stderr
    stopped = storewise(uri, "experiment", "stop")
    assert stopped.returncode == 0
    assert f"stopped experiment {lab.experiment.id}" in stopped.stdout
    assert storewise(uri, "experiment", "stop").returncode == 2
    unknown = storewise(uri, "experiment", "start", "--challenger", "999", "--share", "0.1")
    assert unknown.returncode == 2
    assert "--challenger" in unknown.stderr
    write_experiment(configure(), lab.experiment)  # running again for what follows


def test_promote_on_an_experiments_evidence_records_it_on_the_version(lab: Lab) -> None:
    client = configure()
    result: dict[str, object] = {
        "decision": {"action": "promote", "reason": "the challenger is better: +12.0% revenue per customer"}
    }
    decision = promote_on_evidence(lab.experiment, result)
    assert decision.promoted, decision
    assert (
        str(client.get_model_version_by_alias(RECOMMENDER, "champion").version) == lab.experiment.challenger
    )
    tags = client.get_model_version(RECOMMENDER, lab.experiment.challenger).tags
    assert tags["promotion.experiment"] == lab.experiment.id
    assert json.loads(tags["promotion.evidence"]) == result
    assert "online experiment" in tags["promotion"]
    stopped = read_experiment(client, RECOMMENDER)
    assert stopped is not None
    assert stopped.status == "stopped"
