"""Request and response models of the service (they make the OpenAPI spec).

Every field has bounds, so a malformed request is a 400 naming the field and the reason
before any handler runs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_K = 100
MAX_ITEMS = 200
MAX_QUANTITY = 1000
MAX_PRICE = 1_000_000
# text a person could have typed: no control characters, not only spaces
PRINTABLE = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]
Category = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]
# empty (or absent) for a guest
CustomerId = Annotated[
    str | None,
    Field(
        max_length=64,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="Pseudonymous customer id; empty for a guest.",
    ),
]
PriceSource = Literal["pricing_model", "list_prices"]
Variant = Literal["champion", "challenger"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendContext(Strict):
    recently_viewed: list[Id] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="Items the customer just looked at, oldest first.",
    )
    cart: list[Id] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="Items in the cart (never recommended back)."
    )
    include_categories: list[Category] = Field(default_factory=list, max_length=50)
    exclude_categories: list[Category] = Field(default_factory=list, max_length=50)
    max_per_category: int | None = Field(
        None,
        ge=1,
        le=MAX_K,
        strict=True,
        description="At most this many items of one category in the answer (diversity); "
        "absent or null: no limit.",
    )


class CartItem(Strict):
    item_id: Id
    quantity: int = Field(1, ge=1, le=MAX_QUANTITY, strict=True, description="How many: 1 or more.")


class ModelVersions(Strict):
    recommender: str
    pricing: str | None = Field(description="None while no pricing model has passed the gate.")
    price_source: PriceSource = Field(
        description="'list_prices' while no pricing model has passed the promotion gate: every "
        "base price is then the shop's list price."
    )


class RecommendedItem(Strict):
    item_id: str
    name: str
    category: str
    score: float
    reason: str
    base_price: float
    price: float = Field(description="The price for this customer after loyalty rules.")


class RecommendResponse(Strict):
    customer_id: str | None
    personalized: bool
    source: Literal["personalized", "segment", "region", "trending"]
    items: list[RecommendedItem]
    model_versions: ModelVersions
    request_id: str
    variant: Variant = Field(
        description="Which model answered: the champion, or the challenger of a running experiment. "
        "Send it back with the feedback on this answer."
    )
    experiment: str | None = Field(
        description="The experiment this customer is in (null: none running, a guest, or a "
        "customer without personalization consent, who always get the champion)."
    )


class SimilarItem(Strict):
    item_id: str
    name: str
    category: str
    score: float
    reason: str


class SimilarResponse(Strict):
    item_id: str
    items: list[SimilarItem]
    model_versions: ModelVersions


class ItemPrice(Strict):
    item_id: str
    base_price: float = Field(description="The same for every customer at this moment.")
    base_reason: str
    previous_price: float
    customer_price: float
    applied: Literal["base", "member", "promotion"]
    customer_reason: str


class PriceResponse(Strict):
    customer_id: str | None
    is_member: bool
    currency: str
    prices: list[ItemPrice]
    model_versions: ModelVersions
    request_id: str


class QuoteLine(Strict):
    item_id: str
    quantity: int
    base_price: float
    member_price: float
    promo_price: float | None
    unit_price: float
    applied: Literal["base", "member", "promotion"]
    amount: float
    reason: str


class GapItem(Strict):
    item_id: str
    name: str
    category: str
    price: float = Field(description="The price for this customer.")
    reason: str


class Gap(Strict):
    kind: Literal["free_shipping", "free_membership", "free_gift"]
    amount: float
    text: str
    items_that_close_it: list[GapItem]


class QuoteResponse(Strict):
    customer_id: str | None
    is_member: bool
    currency: str
    lines: list[QuoteLine]
    subtotal: float
    shipping: float
    free_gift: str | None
    total: float
    becomes_member: bool
    applied: list[str]
    missing: list[Gap]
    model_versions: ModelVersions
    request_id: str


class FeedbackEvent(Strict):
    kind: Literal["impression", "click", "add_to_cart", "purchase", "dismiss"] = Field(
        description="'dismiss' is the customer's \"not interested\": the item is not "
        "recommended to them again (needs customer_id)."
    )
    source: Literal["recommendation", "price"]
    item_id: Id
    customer_id: CustomerId = None
    request_id: Id | None = None
    recommendation_source: Literal["personalized", "segment", "region", "trending"] | None = None
    price: float | None = Field(None, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    quantity: int = Field(1, ge=1, le=10_000, strict=True)
    experiment: Id | None = Field(
        None, description="The `experiment` of the answer this event is about (filled in when absent)."
    )
    variant: Variant | None = Field(None, description="The `variant` of that answer.")

    @model_validator(mode="after")
    def _dismiss_names_a_customer(self) -> FeedbackEvent:
        if self.kind == "dismiss" and not (self.customer_id or "").strip():
            raise ValueError("'customer_id' is required for a 'dismiss': whose 'not interested' is it?")
        if (self.experiment is None) != (self.variant is None):
            raise ValueError("'experiment' and 'variant' go together: give both or neither")
        return self


class FeedbackResponse(Strict):
    accepted: int


class InfoResponse(Strict):
    shop: str
    currency: str
    model_versions: ModelVersions
    price_note: str = Field(description="Where the base prices come from.")
    loaded_at: str
    items: int
    customers_personalized: int
    alarms: list[str] = Field(description="What is wrong now (a log that cannot be written, ...).")
    experiment: str | None = Field(description="The running recommender experiment, if any.")
    price_test: str | None = Field(description="The running switchback price test, if any.")
