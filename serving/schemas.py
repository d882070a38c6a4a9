"""Request and response models of the service (they make the OpenAPI spec).

Every field has bounds, so a malformed request is a 400 naming the field and the reason
before any handler runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Id = str
ItemIds = list[Id]
MAX_K = 100
MAX_ITEMS = 200


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
    include_categories: list[str] = Field(default_factory=list, max_length=50)
    exclude_categories: list[str] = Field(default_factory=list, max_length=50)


class CartItem(Strict):
    item_id: Id = Field(min_length=1, max_length=64)
    quantity: int = Field(1, ge=-1000, le=1000, description="Negative for a return.")


class ModelVersions(Strict):
    recommender: str
    pricing: str


class RecommendedItem(Strict):
    item_id: Id
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


class SimilarItem(Strict):
    item_id: Id
    name: str
    category: str
    score: float
    reason: str


class SimilarResponse(Strict):
    item_id: Id
    items: list[SimilarItem]
    model_versions: ModelVersions


class ItemPrice(Strict):
    item_id: Id
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
    item_id: Id
    quantity: int
    base_price: float
    member_price: float
    promo_price: float | None
    unit_price: float
    applied: Literal["base", "member", "promotion"]
    amount: float
    reason: str


class GapItem(Strict):
    item_id: Id
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
    kind: Literal["impression", "click", "add_to_cart", "purchase"]
    source: Literal["recommendation", "price"]
    item_id: Id = Field(min_length=1, max_length=64)
    customer_id: str | None = Field(None, max_length=64)
    request_id: str | None = Field(None, max_length=64)
    recommendation_source: Literal["personalized", "segment", "region", "trending"] | None = None
    price: float | None = Field(None, ge=0, le=1_000_000)
    quantity: int = Field(1, ge=1, le=10_000)


class FeedbackResponse(Strict):
    accepted: int


class InfoResponse(Strict):
    shop: str
    currency: str
    model_versions: ModelVersions
    loaded_at: str
    items: int
    customers_personalized: int
