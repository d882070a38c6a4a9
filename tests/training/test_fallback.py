"""A protocol whose tuned hybrid is clearly behind a peer on the test weeks answers with the
component that scores as that peer does (`training/recommender/fallback.py`), on the style
shop where the right answers are known: every customer next buys again the item they
bought last, which buy-again ranks first and popularity does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli.train import _print_answers
from storewise import columns as c
from storewise.settings import ComponentSettings, EvaluationSettings, RecommenderSettings, TifuSettings
from tests.style import TZ, style_data, style_shop
from training.recommender import models as m
from training.recommender.comparison import intervals_against_hybrid
from training.recommender.data import TrainData, Truth, build_truth
from training.recommender.evaluate import PROTOCOLS, Evaluation, Protocol, evaluate_protocols, make_protocol
from training.recommender.fallback import COMPONENT_OF_PEER, Fallback, fall_back
from training.recommender.hybrid import BlendView, fit_hybrid
from training.recommender.outcome import TrainOutcome
from training.recommender.run_record import answer_metrics
from training.recommender.uncertainty import Interval

SETTINGS = RecommenderSettings(
    components=ComponentSettings(
        ease_regularization=5, bm25_neighbours=10, item_neighbours=10, max_ease_items=100
    ),
    tifu=TifuSettings(neighbours=5),
)
CUTOFF = pd.Timestamp("2026-03-01", tz=TZ)


def last_item_again(tables: dict[str, pd.DataFrame], data: TrainData) -> Truth:
    """Each customer buys again, in the week after the cutoff, the item they bought last;
    'new_a' (one vintage ring so far) buys a second one too, new to them."""
    orders = tables[c.ORDERS]
    last = orders.sort_values(c.ORDERED_AT).groupby(c.CUSTOMER_ID).tail(1)
    again = last.assign(
        **{c.ORDERED_AT: CUTOFF + pd.Timedelta(days=2), c.ORDER_ID: "again-" + last[c.ORDER_ID]}
    )
    new = again[again[c.CUSTOMER_ID] == "new_a"].assign(**{c.ITEM_ID: "V1", c.ORDER_ID: "new-a-V1"})
    window = (CUTOFF, CUTOFF + pd.Timedelta(days=7))
    return build_truth(pd.concat([orders, again, new], ignore_index=True), tables[c.CUSTOMERS], data, window)


@pytest.fixture(scope="module")
def shop() -> tuple[dict[str, pd.DataFrame], TrainData, Truth, dict[str, Protocol]]:
    tables = style_shop()
    data = style_data(tables)
    protocols = {name: make_protocol(name, data, np.zeros(data.n_items, bool)) for name in PROTOCOLS}
    return tables, data, last_item_again(tables, data), protocols


def evaluations_of(
    hybrid: m.Recommender | None, peers: list[m.Recommender], shop: tuple
) -> dict[str, dict[str, Evaluation]]:
    _, data, truth, protocols = shop
    found: dict[str, dict[str, Evaluation]] = {protocol: {} for protocol in PROTOCOLS}
    for peer in peers:
        for protocol, evaluation in evaluate_protocols(peer.fit(data), data, truth, protocols).items():
            found[protocol][peer.name] = evaluation
    return found


def hybrid_with(  # type: ignore[no-untyped-def]
    blend: dict[str, float], shop: tuple, components: set[str], peers: list[m.Recommender] | None = None
):
    tables, data, truth, protocols = shop
    hybrid = fit_hybrid(data, tables[c.ORDERS], None, SETTINGS, components=components)
    hybrid.blends = {protocol: dict(blend) for protocol in PROTOCOLS}
    evaluations = evaluations_of(None, peers or [m.BuyAgain(), m.Popularity()], shop)
    for protocol in PROTOCOLS:
        view = BlendView(hybrid, protocol, protocols[protocol].excluded)
        evaluations[protocol]["hybrid"] = evaluate_protocols(
            view, data, truth, {protocol: protocols[protocol]}
        )[protocol]
    return hybrid, evaluations


def test_a_hybrid_clearly_behind_buy_again_answers_with_buy_again_alone(shop: tuple) -> None:
    _, data, truth, protocols = shop
    hybrid, evaluations = hybrid_with({"popularity": 1.0}, shop, {"buy_again"})
    before = {protocol: dict(by_model) for protocol, by_model in evaluations.items()}
    buy_again = evaluations["all_purchases"]["buy_again"]
    rebuyers = buy_again.customers != "new_a"
    assert (buy_again.ndcg[rebuyers] == 1.0).all(), "the last item bought is buy-again's first"
    assert evaluations["all_purchases"]["hybrid"].ndcg.mean() < 0.6

    answers = fall_back(
        EvaluationSettings(),
        hybrid,
        data,
        truth,
        protocols,
        evaluations,
        intervals_against_hybrid(EvaluationSettings(), evaluations),
        {"buy_again"},
    )

    for protocol in ("all_purchases", "business_rules"):
        assert answers.blends[protocol] == {"buy_again": 1.0}
        fallback = answers.fallbacks[protocol]
        assert (fallback.component, fallback.peer) == ("buy_again", "buy_again")
        assert fallback.tuned_minus_peer.clearly_below_zero
        assert fallback.gain.clearly_above_zero
        assert fallback.tuned_ndcg == pytest.approx(before[protocol]["hybrid"].ndcg.mean())
        # the hybrid's rows are now the component's answers: buy-again's, customer by customer
        np.testing.assert_array_equal(answers.evaluations[protocol]["hybrid"].customers, buy_again.customers)
        np.testing.assert_allclose(answers.evaluations[protocol]["hybrid"].ndcg, buy_again.ndcg)
        assert "buy_again alone: the tuned hybrid" in fallback.describe()
    # discovery (new_a's new ring alone): popularity is the hybrid's answer there too, unchanged
    assert len(answers.evaluations["discovery"]["hybrid"].customers) == 1
    assert "discovery" not in answers.fallbacks
    assert answers.blends["discovery"] == {"popularity": 1.0}
    # the caller's evaluations and model are left as they were
    assert evaluations == before
    assert hybrid.blends["all_purchases"] == {"popularity": 1.0}


def test_no_fallback_when_level_or_when_the_final_model_lacks_the_component(shop: tuple) -> None:
    _, data, truth, protocols = shop
    level, evaluations = hybrid_with({"buy_again": 1.0}, shop, {"buy_again"})
    answers = fall_back(
        EvaluationSettings(),
        level,
        data,
        truth,
        protocols,
        evaluations,
        intervals_against_hybrid(EvaluationSettings(), evaluations),
        {"buy_again"},
    )
    assert answers.fallbacks == {}
    assert answers.blends == level.blends

    # TIFU-KNN ranks each customer's last ring first, popularity does not; the final model
    # fits TIFU-KNN only if a tuned blend or reranker reads it (`fitted`)
    peers: list[m.Recommender] = [m.TifuKnn(SETTINGS.tifu), m.Popularity()]
    behind, evaluations = hybrid_with({"popularity": 1.0}, shop, {"tifu"}, peers)
    assert evaluations["all_purchases"]["tifu_knn"].ndcg.mean() > 0.9
    answers = fall_back(
        EvaluationSettings(),
        behind,
        data,
        truth,
        protocols,
        evaluations,
        intervals_against_hybrid(EvaluationSettings(), evaluations),
        {"popularity"},
    )
    assert answers.fallbacks == {}
    answers = fall_back(
        EvaluationSettings(),
        behind,
        data,
        truth,
        protocols,
        evaluations,
        intervals_against_hybrid(EvaluationSettings(), evaluations),
        {"tifu"},
    )
    assert answers.blends["all_purchases"] == {"tifu": 1.0}


def test_under_discovery_a_peer_of_the_customers_own_purchases_is_no_fallback(shop: tuple) -> None:
    """Buy again has nothing to offer where bought items are excluded: scored level with
    popularity there, it could still look best by the order of the peers (a tie)."""
    _, data, truth, protocols = shop
    hybrid, evaluations = hybrid_with({"popularity": 1.0}, shop, {"buy_again"})
    customers = np.array([f"u{n}" for n in range(100)])
    ahead = Evaluation({}, customers, np.ones(100))
    level = Evaluation({}, customers, np.full(100, 0.2))
    evaluations["discovery"] = {"hybrid": level, "buy_again": ahead, "popularity": level}
    answers = fall_back(
        EvaluationSettings(),
        hybrid,
        data,
        truth,
        protocols,
        evaluations,
        intervals_against_hybrid(EvaluationSettings(), evaluations),
        {"buy_again"},
    )
    assert "discovery" not in answers.fallbacks


@pytest.mark.parametrize(
    "peer",
    [
        m.TifuKnn(SETTINGS.tifu),
        m.BuyAgain(),
        m.Repurchase(SETTINGS.repurchase, 7),
        m.Popularity(trending=True),
        m.Popularity(),
    ],
    ids=lambda peer: type(peer).__name__,
)
def test_each_mapped_component_alone_answers_as_its_peer(shop: tuple, peer: m.Recommender) -> None:
    """Under every protocol, the component alone ranks each customer's test items where the
    peer does (the same NDCG@10, customer by customer). Not the whole list: ties and the items
    the peer leaves unscored may come in another order (which is why a fallback is judged on
    the test weeks itself)."""
    tables, data, truth, protocols = shop
    name = peer.name
    component = COMPONENT_OF_PEER[name]
    hybrid = fit_hybrid(data, tables[c.ORDERS], None, SETTINGS, components={component})
    hybrid.blends = {protocol: {component: 1.0} for protocol in PROTOCOLS}
    peers = evaluate_protocols(peer.fit(data), data, truth, protocols)
    for protocol in PROTOCOLS:
        view = BlendView(hybrid, protocol, protocols[protocol].excluded)
        alone = evaluate_protocols(view, data, truth, {protocol: protocols[protocol]})[protocol]
        np.testing.assert_allclose(alone.ndcg, peers[protocol].ndcg, err_msg=f"{name} under {protocol}")


def test_a_fallback_is_printed_and_logged_beside_the_tuned_hybrids_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fallback = Fallback(
        "tifu", "tifu_knn", 0.3186, Interval(-0.0219, -0.0407, -0.0044), Interval(0.0219, 0.0044, 0.0407)
    )
    outcome = TrainOutcome(
        None, None, "business_rules", pd.DataFrame(), [], {}, fallbacks={"all_purchases": fallback}
    )
    assert answer_metrics(outcome) == {
        "all_purchases.tuned_hybrid.ndcg_at_10": 0.3186,
        "all_purchases.tuned_hybrid_minus.tifu_knn.mean": -0.0219,
        "all_purchases.tuned_hybrid_minus.tifu_knn.low": -0.0407,
        "all_purchases.tuned_hybrid_minus.tifu_knn.high": -0.0044,
    }
    _print_answers(outcome)
    assert capsys.readouterr().out == (
        "  all_purchases answered, from the test weeks on, by tifu alone: the tuned hybrid (0.3186) was clearly"
        " behind tifu_knn on the test weeks, -0.0219 [-0.0407, -0.0044]; tifu alone minus it +0.0219"
        " [+0.0044, +0.0407] (chosen on the test weeks)\n"
    )
