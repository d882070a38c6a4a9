"""The Storewise service: recommend, similar, price, quote, feedback, info, reload.

`bentoml serve serving.service:Storewise` (or `storewise serve`) loads the `champion`
versions of `storewise-recommender` and `storewise-pricing` from the MLflow registry
(`MLFLOW_TRACKING_URI`), the shop's settings from `STOREWISE_SHOP_DIR` and the loyalty rules
from `config/loyalty.yaml`, and answers JSON over HTTP. Bad input is a 400 naming the field
(BentoML validates the typed arguments), an unknown item a 404 naming it. Every price it
gives goes to `<shop>/logs/price_audit.jsonl`; feedback to `<shop>/logs/feedback.jsonl`.
Every answer carries the model versions. A newly promoted champion is picked up by a
watcher thread (every `STOREWISE_RELOAD_SECONDS`, default 15) or `POST /reload`.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker: the workers are the parallelism

import functools
import logging
import time
import uuid
from typing import Annotated, Any

import bentoml
from bentoml.exceptions import NotFound
from pydantic import Field

from inference.loyalty import CartLine, PricedLine, price_line, quote
from inference.recommender.answers import Context, Recommendation
from serving import bentoml_fix
from serving.logs import FEEDBACK, PRICE_AUDIT, JsonLines
from serving.middleware import JsonOnly
from serving.schemas import (
    MAX_ITEMS,
    CartItem,
    FeedbackEvent,
    FeedbackResponse,
    Gap,
    GapItem,
    InfoResponse,
    ItemPrice,
    ModelVersions,
    PriceResponse,
    QuoteLine,
    QuoteResponse,
    RecommendContext,
    RecommendedItem,
    RecommendResponse,
    SimilarItem,
    SimilarResponse,
)
from serving.state import Loaded, ServingState
from storewise.ids import normalize_customer_id

if os.environ.get("STOREWISE_BENTOML_FIX", "1") != "0":  # "0" only to measure the defect (benchmarks)
    bentoml_fix.apply()
log = logging.getLogger("storewise.serving")
WORKERS = int(os.environ.get("STOREWISE_WORKERS", "2"))
CustomerId = Annotated[
    str | None, Field(None, max_length=64, description="Pseudonymous customer id; empty for a guest.")
]


# price_line is pure and a model has one base price per item, so a request's lines repeat
# earlier ones: memoized, a line costs a dict lookup instead of the loyalty arithmetic
cached_price_line = functools.lru_cache(maxsize=200_000)(price_line)


def request_id() -> str:
    return uuid.uuid4().hex[:16]


# Endpoints are `async def`: each is a fraction of a millisecond of CPU work, and on the
# event loop it skips BentoML's hand-off to a worker thread (measured in
# benchmarks/README.md). `/reload` stays a plain def: it may download a model.
@bentoml.service(name="storewise", workers=WORKERS, traffic={"timeout": 30})
class Storewise:
    def __init__(self) -> None:
        self.state = ServingState()
        logs = self.state.shop.logs
        self.audit = JsonLines(logs / PRICE_AUDIT)
        self.feedback_log = JsonLines(logs / FEEDBACK)
        self.state.start_watching(float(os.environ.get("STOREWISE_RELOAD_SECONDS", "15")))
        if os.environ.get("STOREWISE_BENTOML_FIX", "1") != "0":
            bentoml_fix.freeze_heap()

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def versions(snapshot: Loaded) -> ModelVersions:
        return ModelVersions(recommender=snapshot.recommender_version, pricing=snapshot.pricing_version)

    @staticmethod
    def require_items(snapshot: Loaded, item_ids: list[str]) -> None:
        recommendations = snapshot.recommendations
        unknown = [
            item
            for item in dict.fromkeys(item_ids)
            if not (recommendations.knows_item(item) and snapshot.pricing.knows(item))
        ]
        if unknown:
            raise NotFound(f"unknown item id(s): {', '.join(repr(item) for item in unknown[:20])}")

    def visible(self, customer_id: str | None) -> str | None:
        """The customer's id, or None for a guest or an erased customer (who is then served
        exactly as a guest: nothing personal, no member benefits)."""
        if not customer_id:
            return None
        who = normalize_customer_id(customer_id)
        return None if self.state.is_erased(who) else who

    @staticmethod
    def is_member(snapshot: Loaded, customer_id: str | None) -> bool:
        return bool(customer_id) and snapshot.recommendations.is_member(str(customer_id))

    def customer_prices(
        self, snapshot: Loaded, item_ids: list[str], customer_id: str | None, endpoint: str, rid: str
    ) -> list[ItemPrice]:
        return [
            ItemPrice(
                item_id=item,
                base_price=base,
                base_reason=reason,
                previous_price=previous,
                customer_price=line.unit_price,
                applied=line.applied,
                customer_reason=line.reason,
            )
            for item, base, reason, previous, line in self.priced(
                snapshot, item_ids, customer_id, endpoint, rid
            )
        ]

    def priced(
        self, snapshot: Loaded, item_ids: list[str], customer_id: str | None, endpoint: str, rid: str
    ) -> list[tuple[str, float, str, float, PricedLine]]:
        """(item, base price, its reason, previous price, the customer's line) per item, each
        written to the price audit log."""
        decided = snapshot.pricing.price(item_ids)
        member = self.is_member(snapshot, customer_id)
        promotions = snapshot.recommendations.rules.promotions
        loyalty, currency = self.state.loyalty, self.state.settings.currency
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        rows, audit = [], []
        for item, base, reason, previous in zip(
            item_ids,
            decided["price"].tolist(),
            decided["reason"].tolist(),
            decided["previous_price"].tolist(),
            strict=True,
        ):
            line = cached_price_line(CartLine(item, 1, base, promotions.get(item)), member, loyalty, currency)
            rows.append((item, base, str(reason), previous, line))
            audit.append(
                {
                    "at": now,
                    "request_id": rid,
                    "endpoint": endpoint,
                    "item_id": item,
                    "base_price": base,
                    "previous_price": previous,
                    "reason": str(reason),
                    "customer_id": customer_id,
                    "customer_price": line.unit_price,
                    "applied": line.applied,
                    "pricing_version": snapshot.pricing_version,
                }
            )
        self.audit.append(audit)
        return rows

    def describe(self, snapshot: Loaded, item_id: str) -> tuple[str, str]:
        recommendations = snapshot.recommendations
        return str(recommendations.item_names[item_id]), str(recommendations.item_categories[item_id])

    # -- endpoints --------------------------------------------------------------------

    @bentoml.api(route="/recommend")
    async def recommend(
        self,
        customer_id: CustomerId = None,
        k: Annotated[int, Field(ge=1, le=100)] = 10,
        context: RecommendContext | None = None,
    ) -> RecommendResponse:
        """Top k items for a customer, priced for them, with reasons; non-personalized (and
        said so) for a guest, an unknown customer or one without consent."""
        snapshot = self.state.current
        context = context or RecommendContext()
        self.require_items(snapshot, context.recently_viewed + context.cart)
        who = self.visible(customer_id)
        answer = snapshot.recommendations.recommend(
            who,
            k,
            Context(
                context.recently_viewed, context.cart, context.include_categories, context.exclude_categories
            ),
        )
        rid = request_id()
        ids = [item.item_id for item in answer.items]
        prices = self.priced(snapshot, ids, who, "recommend", rid) if ids else []
        items = [
            RecommendedItem(
                item_id=item.item_id,
                name=name,
                category=category,
                score=item.score,
                reason=item.reason,
                base_price=base,
                price=line.unit_price,
            )
            for item, (_, base, _, _, line) in zip(answer.items, prices, strict=True)
            for name, category in [self.describe(snapshot, item.item_id)]
        ]
        return RecommendResponse(
            customer_id=who,
            personalized=answer.personalized,
            source=answer.source,
            items=items,
            model_versions=self.versions(snapshot),
            request_id=rid,
        )

    @bentoml.api(route="/similar")
    async def similar(
        self,
        item_id: Annotated[str, Field(min_length=1, max_length=64)],
        k: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> SimilarResponse:
        """Items like this one (embeddings blended with co-purchase), with reasons."""
        snapshot = self.state.current
        self.require_items(snapshot, [item_id])
        found = snapshot.recommendations.similar(item_id, k)
        items = [
            SimilarItem(
                item_id=item.item_id, name=name, category=category, score=item.score, reason=item.reason
            )
            for item in found
            for name, category in [self.describe(snapshot, item.item_id)]
        ]
        return SimilarResponse(item_id=item_id, items=items, model_versions=self.versions(snapshot))

    @bentoml.api(route="/price")
    async def price(
        self,
        item_ids: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=64)]],
            Field(min_length=1, max_length=MAX_ITEMS),
        ],
        customer_id: CustomerId = None,
        cart: Annotated[list[CartItem], Field(max_length=MAX_ITEMS)] | None = None,
    ) -> PriceResponse:
        """Base price from the pricing policy (the same for everyone) with its reason, and
        the price for this customer after the loyalty rules."""
        snapshot = self.state.current
        self.require_items(snapshot, list(item_ids) + [line.item_id for line in cart or []])
        who = self.visible(customer_id)
        rid = request_id()
        prices = self.customer_prices(snapshot, list(item_ids), who, "price", rid)
        return PriceResponse(
            customer_id=who,
            is_member=self.is_member(snapshot, who),
            currency=self.state.settings.currency,
            prices=prices,
            model_versions=self.versions(snapshot),
            request_id=rid,
        )

    @bentoml.api(route="/quote")
    async def quote(
        self,
        cart: Annotated[list[CartItem], Field(min_length=1, max_length=MAX_ITEMS)],
        customer_id: CustomerId = None,
    ) -> QuoteResponse:
        """A whole cart priced with the loyalty rules: each line's base, member and
        promotional price and the one applied, shipping, gift, total, what applied and
        why, what is missing, and items that would close each gap."""
        snapshot = self.state.current
        item_ids = [line.item_id for line in cart]
        self.require_items(snapshot, item_ids)
        who = self.visible(customer_id)
        member = self.is_member(snapshot, who)
        rid = request_id()
        unique = list(dict.fromkeys(item_ids))
        base = dict(
            zip(
                unique,
                [p.base_price for p in self.customer_prices(snapshot, unique, who, "quote", rid)],
                strict=True,
            )
        )
        promotions = snapshot.recommendations.rules.promotions
        lines = [
            CartLine(line.item_id, line.quantity, base[line.item_id], promotions.get(line.item_id))
            for line in cart
        ]
        result = quote(lines, member, self.state.loyalty, self.state.settings.currency)
        goes_with = snapshot.recommendations.complementary(unique, 40) if result.missing else []
        gaps = [
            Gap(
                kind=gap.kind,
                amount=gap.amount,
                text=gap.text,
                items_that_close_it=self.closers(snapshot, goes_with, gap.amount, member),
            )
            for gap in result.missing
        ]
        return QuoteResponse(
            customer_id=who,
            is_member=member,
            currency=self.state.settings.currency,
            lines=[QuoteLine(**vars(line)) for line in result.lines],
            subtotal=result.subtotal,
            shipping=result.shipping,
            free_gift=result.free_gift,
            total=result.total,
            becomes_member=result.becomes_member,
            applied=result.applied,
            missing=gaps,
            model_versions=self.versions(snapshot),
            request_id=rid,
        )

    def closers(
        self, snapshot: Loaded, candidates: list[Recommendation], gap: float, member: bool
    ) -> list[GapItem]:
        """Up to three of the items that go with the cart (`candidates`) that cost at least
        the gap, cheapest first."""
        if not candidates:
            return []
        ids = [item.item_id for item in candidates]
        decided = snapshot.pricing.price(ids)
        factor = 1 - self.state.loyalty.member_discount if member else 1.0
        priced = [
            (float(price) * factor, item) for price, item in zip(decided["price"], candidates, strict=True)
        ]
        fitting = sorted((pair for pair in priced if pair[0] >= gap), key=lambda pair: pair[0])[:3]
        result = []
        for price, item in fitting:
            name, category = self.describe(snapshot, item.item_id)
            result.append(
                GapItem(
                    item_id=item.item_id,
                    name=name,
                    category=category,
                    price=round(price, 2),
                    reason=f"{item.reason}; closes the gap",
                )
            )
        return result

    @bentoml.api(route="/feedback")
    async def feedback(
        self, events: Annotated[list[FeedbackEvent], Field(min_length=1, max_length=1000)]
    ) -> FeedbackResponse:
        """Impressions, clicks, add-to-carts and purchases of what was shown, for uplift reports."""
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.feedback_log.append([{"at": now, **event.model_dump()} for event in events])
        return FeedbackResponse(accepted=len(events))

    @bentoml.api(route="/info")
    async def info(self) -> InfoResponse:
        """The model versions served and what they cover."""
        snapshot = self.state.current
        return InfoResponse(
            shop=self.state.settings.name,
            currency=self.state.settings.currency,
            model_versions=self.versions(snapshot),
            loaded_at=snapshot.loaded_at,
            items=int(snapshot.recommendations.model.n_items),
            customers_personalized=len(snapshot.recommendations.model.user_ids),
        )

    @bentoml.api(route="/reload")
    def reload(self) -> dict[str, Any]:
        """Pick up newly promoted champions now (a watcher also does it periodically)."""
        changed = self.state.reload_if_changed()
        snapshot = self.state.current
        return {"reloaded": changed, "model_versions": self.versions(snapshot).model_dump()}

    @bentoml.api(route="/noop")
    async def noop(self) -> dict[str, Any]:
        """Does nothing: the HTTP cost of the service, for benchmarks."""
        return {"ok": True}


Storewise.add_asgi_middleware(JsonOnly)  # type: ignore[attr-defined]
