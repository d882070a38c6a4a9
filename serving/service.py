"""The Storewise service: recommend, similar, price, quote, feedback, info, reload.

`bentoml serve serving.service:Storewise` (or `storewise serve`) loads the `champion`
versions of `storewise-recommender` and `storewise-pricing` from the MLflow registry
(`MLFLOW_TRACKING_URI`), the shop's settings from `STOREWISE_SHOP_DIR` and the loyalty rules
from `config/loyalty.yaml`, and answers JSON over HTTP. Its settings are environment
variables checked at import (`serving/settings.py`). Bad input is a 400 naming the field
(BentoML validates the typed arguments), an unknown item a 404 naming it. Every price it
gives goes to the price audit log (`serving/logs.py`), and a price that cannot be audited
(a full disk) is not given: 503. Every answer carries the model versions and where the
prices come from. A newly promoted champion is picked up by a watcher thread (every
`STOREWISE_RELOAD_SECONDS`) or `POST /reload` (an admin endpoint: `STOREWISE_ADMIN_TOKEN`).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker: the workers are the parallelism

import functools
import inspect
import logging
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import bentoml
import numpy as np
from bentoml.exceptions import NotFound
from pydantic import Field
from starlette.responses import JSONResponse

from inference.experiments import apply_price_test
from inference.loyalty import CartLine, PricedLine, price_line, quote
from inference.pricing.model import PricingModel
from inference.pricing.policy import price_bounds
from inference.recommender.answers import Answer, Context, Recommendation, Recommendations
from serving import bentoml_fix
from serving.dismissals import Dismissals
from serving.list_prices import REASON as LIST_PRICE_NOTE
from serving.logs import FEEDBACK, PRICE_AUDIT, JsonLines, LogWriteError
from serving.middleware import AdminOnly, JsonOnly
from serving.schemas import (
    MAX_ITEMS,
    MAX_K,
    CartItem,
    CustomerId,
    FeedbackEvent,
    FeedbackResponse,
    Gap,
    GapItem,
    Id,
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
from serving.state import Loaded, NotReadyError, ServingState, tracking_timeouts
from storewise.experiments import CHALLENGER, Variant, variant_of
from storewise.ids import normalize_customer_id
from storewise.service_logs import DISMISSALS
from storewise.service_settings import (
    ServiceSettings,
    ServiceSettingsError,
    read_service_settings,
    require_shop,
)

log = logging.getLogger("storewise.serving")


def settings_or_exit() -> ServiceSettings:
    """The environment's settings, or one line naming the bad variable and exit code 2."""
    try:
        return read_service_settings()
    except ServiceSettingsError as error:
        print(f"error: {error.message}", file=sys.stderr)
        raise SystemExit(2) from None


SETTINGS = settings_or_exit()
tracking_timeouts(SETTINGS)
if SETTINGS.bentoml_fix == "1":  # "0" only to measure the defect (benchmarks)
    bentoml_fix.apply()


# price_line is pure and a model has one base price per item, so a request's lines repeat
# earlier ones: memoized, a line costs a dict lookup instead of the loyalty arithmetic
cached_price_line = functools.lru_cache(maxsize=200_000)(price_line)


def request_id() -> str:
    return uuid.uuid4().hex[:16]


class UnavailableError(Exception):
    """The service cannot answer this now (no models, a log it cannot write); a 503 whose
    body says why. BentoML hides the message of every 5xx it raises, so endpoints wrapped
    in `says_why_unavailable` return the answer themselves."""


EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])


def says_why_unavailable(endpoint: EndpointT) -> EndpointT:
    def unavailable(error: UnavailableError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=503, headers={"retry-after": "5"})

    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await endpoint(*args, **kwargs)
            except UnavailableError as error:
                return unavailable(error)

        return wrapper  # type: ignore[return-value]

    @functools.wraps(endpoint)
    def blocking(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        except UnavailableError as error:
            return unavailable(error)

    return blocking  # type: ignore[return-value]


# Endpoints are `async def`: each is a fraction of a millisecond of CPU work, and on the
# event loop it skips BentoML's hand-off to a worker thread (measured in
# benchmarks/README.md). `/reload` stays a plain def: it may download a model.
@bentoml.service(name="storewise", workers=SETTINGS.workers, traffic={"timeout": 30})
class Storewise:
    def __init__(self) -> None:
        try:
            require_shop(SETTINGS)
        except ServiceSettingsError as error:
            log.error("%s", error.message)
            print(f"error: {error.message}", file=sys.stderr)
            raise SystemExit(2) from None
        self.state = ServingState(SETTINGS)
        logs = self.state.shop.logs
        rotation = {
            "rotate": SETTINGS.log_rotate,
            "max_bytes": int(SETTINGS.log_max_mb * 2**20),
            "keep": SETTINGS.log_keep,
        }
        self.audit = JsonLines(logs, PRICE_AUDIT, **rotation)  # type: ignore[arg-type]
        self.feedback_log = JsonLines(logs, FEEDBACK, **rotation)  # type: ignore[arg-type]
        # "not interested" is for good: rotated like the others, never pruned
        self.dismissals_log = JsonLines(
            logs,
            DISMISSALS,
            rotate="size",
            max_bytes=rotation["max_bytes"],  # type: ignore[arg-type]
            keep=10**9,
        )
        self.dismissals = Dismissals(logs)
        self.zone = ZoneInfo(self.state.settings.timezone)
        self.state.start_watching(SETTINGS.reload_seconds)
        if SETTINGS.bentoml_fix == "1":
            bentoml_fix.freeze_heap()

    def __is_ready__(self) -> bool:
        """BentoML's /readyz: ready only with models to answer with."""
        return self.state.current is not None

    # -- helpers ----------------------------------------------------------------------

    def snapshot(self) -> Loaded:
        try:
            return self.state.require()
        except NotReadyError as error:
            raise UnavailableError(str(error)) from None

    @staticmethod
    def versions(snapshot: Loaded) -> ModelVersions:
        return ModelVersions(
            recommender=snapshot.recommender_version,
            pricing=snapshot.pricing_version,
            price_source=snapshot.price_source,
        )

    @staticmethod
    def write(log_file: JsonLines, records: list[dict[str, Any]], what: str) -> None:
        """Append to a log, or refuse the request (503): a price is never given without its
        audit line, nor feedback accepted that is not kept. The first failure of an outage
        is logged as an error (the alarm), and /info lists it until a write succeeds."""
        outage = log_file.last_failure is not None
        try:
            log_file.append(records)
        except LogWriteError as error:
            if not outage:  # once per outage; /info shows it meanwhile
                log.error("ALARM: %s; refusing to %s until it can be written", error, what)
            raise UnavailableError(f"cannot write the log, so refusing to {what}: {error}") from None

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
        who = normalize_customer_id(customer_id) if customer_id else ""
        if not who:
            return None
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
        arms: list[str | None] = []
        if snapshot.price_test is not None:
            tested = apply_price_test(
                snapshot.price_test,
                self.today(),
                item_ids,
                decided,
                *self.guardrails(snapshot, item_ids),
            )
            decided = {**decided, "price": tested.price, "reason": tested.reason}
            arms = tested.arm
        member = self.is_member(snapshot, customer_id)
        promotions = snapshot.recommendations.rules.promotions
        loyalty, currency = self.state.loyalty, self.state.settings.currency
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        rows, audit = [], []
        for index, (item, base, reason, previous) in enumerate(
            zip(
                item_ids,
                decided["price"].tolist(),
                decided["reason"].tolist(),
                decided["previous_price"].tolist(),
                strict=True,
            )
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
            if arms and arms[index] is not None:  # the audit marks a price test's prices
                audit[-1].update({"price_test": snapshot.price_test.id, "arm": arms[index]})  # type: ignore[union-attr]
        self.write(self.audit, audit, "give prices")
        return rows

    def today(self) -> date:
        """The shop's date now (a price test's arms change at the shop's midnight)."""
        return datetime.now(self.zone).date()

    @staticmethod
    def guardrails(snapshot: Loaded, item_ids: list[str]) -> tuple[tuple[Any, Any] | None, float | None]:
        """Each item's floor and ceiling under the pricing model's guardrails, and its price
        ending (None at list prices, which have no guardrails of their own)."""
        pricing = snapshot.pricing
        if not isinstance(pricing, PricingModel):
            return None, None
        rails = pricing.settings.guardrails
        positions = [pricing.position[item] for item in item_ids]
        bounds = price_bounds(pricing.states(np.array(positions, dtype=np.int64)), pricing.settings)
        return bounds, rails.ending

    def describe(
        self, snapshot: Loaded, item_id: str, model: Recommendations | None = None
    ) -> tuple[str, str]:
        recommendations = model or snapshot.recommendations
        return str(recommendations.item_names[item_id]), str(recommendations.item_categories[item_id])

    def variant(self, snapshot: Loaded, who: str | None) -> Variant:
        """The customer's variant of the running experiment (the champion for everyone when
        none runs; guests and customers without consent are never in one)."""
        if snapshot.experiment is None or snapshot.challenger is None or who is None:
            return "champion"
        return variant_of(snapshot.experiment, who, snapshot.recommendations.can_personalize(who))

    def answer(
        self, snapshot: Loaded, who: str | None, k: int, context: RecommendContext
    ) -> tuple[Answer, Recommendations, Variant]:
        """The answer of the model this customer's variant names, without the items they
        dismissed, with at most `max_per_category` of a category when asked."""
        variant = self.variant(snapshot, who)
        model = snapshot.challenger if variant == CHALLENGER else snapshot.recommendations
        assert model is not None
        answer = model.recommend(
            who,
            k,
            Context(
                context.recently_viewed,
                context.cart,
                context.include_categories,
                context.exclude_categories,
                dismissed=self.dismissals.of(who) if who else [],
                max_per_category=context.max_per_category,
            ),
        )
        if model is not snapshot.recommendations:  # a challenger may know items the prices do not
            answer = Answer(
                [item for item in answer.items if snapshot.pricing.knows(item.item_id)],
                answer.source,
                answer.personalized,
            )
        return answer, model, variant

    # -- endpoints --------------------------------------------------------------------

    @bentoml.api(route="/recommend")
    @says_why_unavailable
    async def recommend(
        self,
        customer_id: CustomerId = None,
        k: Annotated[int, Field(ge=1, le=MAX_K, strict=True)] = 10,
        context: RecommendContext | None = None,
    ) -> RecommendResponse:
        """Top k items for a customer, priced for them, with reasons; non-personalized (and
        said so) for a guest, an unknown customer or one without consent."""
        snapshot = self.snapshot()
        context = context or RecommendContext()
        self.require_items(snapshot, context.recently_viewed + context.cart)
        who = self.visible(customer_id)
        answer, model, variant = self.answer(snapshot, who, k, context)
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
            for name, category in [self.describe(snapshot, item.item_id, model)]
        ]
        versions = self.versions(snapshot)
        if variant == CHALLENGER:
            versions.recommender = snapshot.experiment.challenger  # type: ignore[union-attr]
        return RecommendResponse(
            customer_id=who,
            personalized=answer.personalized,
            source=answer.source,
            items=items,
            model_versions=versions,
            request_id=rid,
            variant=variant,
            experiment=snapshot.experiment.id
            if snapshot.experiment and self.in_experiment(snapshot, who)
            else None,
        )

    @staticmethod
    def in_experiment(snapshot: Loaded, who: str | None) -> bool:
        return (
            snapshot.challenger is not None
            and who is not None
            and snapshot.recommendations.can_personalize(who)
        )

    @bentoml.api(route="/similar")
    @says_why_unavailable
    async def similar(
        self,
        item_id: Id,
        k: Annotated[int, Field(ge=1, le=MAX_K, strict=True)] = 10,
    ) -> SimilarResponse:
        """Items like this one (embeddings blended with co-purchase), with reasons."""
        snapshot = self.snapshot()
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
    @says_why_unavailable
    async def price(
        self,
        item_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_ITEMS)],
        customer_id: CustomerId = None,
        cart: Annotated[list[CartItem], Field(max_length=MAX_ITEMS)] | None = None,
    ) -> PriceResponse:
        """Base price from the pricing policy (the same for everyone) with its reason, and
        the price for this customer after the loyalty rules."""
        snapshot = self.snapshot()
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
    @says_why_unavailable
    async def quote(
        self,
        cart: Annotated[list[CartItem], Field(min_length=1, max_length=MAX_ITEMS)],
        customer_id: CustomerId = None,
    ) -> QuoteResponse:
        """A whole cart priced with the loyalty rules: each line's base, member and
        promotional price and the one applied, shipping, gift, total, what applied and
        why, what is missing, and items that would close each gap."""
        snapshot = self.snapshot()
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
                items_that_close_it=self.closers(snapshot, goes_with, gap.amount, gap.kind == "free_gift"),
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
        self, snapshot: Loaded, candidates: list[Recommendation], gap: float, at_member_price: bool
    ) -> list[GapItem]:
        """Up to three of the items that go with the cart (`candidates`) that cost at least
        the gap, cheapest first; at the member price for the gift's gap (measured on what a
        member pays), at the price for everyone for the others (inference/loyalty.py)."""
        if not candidates:
            return []
        ids = [item.item_id for item in candidates]
        decided = snapshot.pricing.price(ids)
        factor = 1 - self.state.loyalty.member_discount if at_member_price else 1.0
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
    @says_why_unavailable
    async def feedback(
        self, events: Annotated[list[FeedbackEvent], Field(min_length=1, max_length=1000)]
    ) -> FeedbackResponse:
        """Impressions, clicks, add-to-carts and purchases of what was shown, for uplift and
        experiment reports; a `dismiss` (the customer's "not interested") also hides the
        item from that customer from the next `recommend` on."""
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        records = [
            {
                "at": now,
                **event.model_dump(),
                # the id as the rest of Storewise knows it (erasure finds the lines by it)
                "customer_id": normalize_customer_id(event.customer_id) if event.customer_id else None,
            }
            for event in events
        ]
        self.label_variants(records)
        dismissed = [
            {"at": now, "customer_id": record["customer_id"], "item_id": record["item_id"]}
            for record in records
            if record["kind"] == "dismiss" and record["customer_id"]
        ]
        if dismissed:  # kept before the feedback is acknowledged: the next answer honours it
            self.write(self.dismissals_log, dismissed, "accept a dismissal")
        self.write(self.feedback_log, records, "accept feedback")
        return FeedbackResponse(accepted=len(events))

    def label_variants(self, records: list[dict[str, Any]]) -> None:
        """Events on recommendations that do not say their experiment get the customer's
        assignment (the same function of the id that chose the model that answered)."""
        snapshot = self.state.current
        if snapshot is None or snapshot.experiment is None:
            return
        for record in records:
            who = record["customer_id"]
            unlabelled = record["experiment"] is None and record["source"] == "recommendation"
            if unlabelled and who and self.in_experiment(snapshot, who) and not self.state.is_erased(who):
                record["experiment"] = snapshot.experiment.id
                record["variant"] = self.variant(snapshot, who)

    @bentoml.api(route="/info")
    @says_why_unavailable
    async def info(self) -> InfoResponse:
        """The model versions served and what they cover."""
        snapshot = self.snapshot()
        return InfoResponse(
            shop=self.state.settings.name,
            currency=self.state.settings.currency,
            model_versions=self.versions(snapshot),
            price_note=LIST_PRICE_NOTE
            if snapshot.pricing_version is None
            else f"base prices from pricing model v{snapshot.pricing_version}",
            loaded_at=snapshot.loaded_at,
            items=int(snapshot.recommendations.model.n_items),
            customers_personalized=len(snapshot.recommendations.model.user_ids),
            alarms=self.alarms(),
            experiment=(
                f"{snapshot.experiment.id}: challenger v{snapshot.experiment.challenger} on "
                f"{snapshot.experiment.share:.0%} of the customers the champion personalizes for"
            )
            if snapshot.experiment
            else None,
            price_test=(
                f"{snapshot.price_test.id}: {len(snapshot.price_test.items)} item(s), "
                f"±{snapshot.price_test.step:.1%} by day, {snapshot.price_test.start} to {snapshot.price_test.end}"
            )
            if snapshot.price_test
            else None,
        )

    def alarms(self) -> list[str]:
        found = [
            log_file.last_failure
            for log_file in (self.audit, self.feedback_log, self.dismissals_log)
            if log_file.last_failure
        ]
        if self.state.tracking_down_since:
            found.append(f"tracking server unreachable since {self.state.tracking_down_since}")
        found += [f"cannot load {reason}" for reason in self.state.broken.values()]
        return found

    @bentoml.api(route="/reload")
    @says_why_unavailable
    def reload(self) -> dict[str, Any]:
        """Admin: pick up newly promoted champions now (a watcher also does it periodically).
        Needs `Authorization: Bearer <STOREWISE_ADMIN_TOKEN>`."""
        changed = self.state.reload_if_changed()
        snapshot = self.snapshot()
        return {"reloaded": changed, "model_versions": self.versions(snapshot).model_dump()}

    @bentoml.api(route="/noop")
    async def noop(self) -> dict[str, Any]:
        """Admin: does nothing: the HTTP cost of the service, for benchmarks. Needs
        `Authorization: Bearer <STOREWISE_ADMIN_TOKEN>`."""
        return {"ok": True}


def refuse_unknown_fields() -> None:
    """BentoML builds each endpoint's request model from its signature with pydantic's
    default, which ignores unknown fields: `{"k": 3, "colour": "red"}` was answered as if
    `colour` meant something. Here they are a 400 naming the field (and the OpenAPI spec
    says `additionalProperties: false`)."""
    for method in Storewise.apis.values():  # type: ignore[attr-defined]
        method.input_spec.model_config["extra"] = "forbid"
        method.input_spec.model_rebuild(force=True)


refuse_unknown_fields()
Storewise.add_asgi_middleware(JsonOnly)  # type: ignore[attr-defined]
Storewise.add_asgi_middleware(AdminOnly, token=lambda: SETTINGS.admin_token)  # type: ignore[attr-defined]
