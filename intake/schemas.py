"""The canonical tables every importer produces, declared once.

`data import --format canonical` coerces files to these schemas and `data check`
validates a stored shop against them, so the two can never disagree about what a valid
table is.

Returns are rows of `orders` with `returned = true`: the quantity given back (positive),
`ordered_at` the time of the return and `order_id` the return's document. This is how
invoice exports record them (a cancellation invoice per return) and it keeps partial
returns exact, which one flag on the original line could not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from storewise import columns as c

Kind = Literal["str", "int", "float", "bool", "timestamp", "date"]


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: Kind
    nullable: bool = False
    minimum: float | None = None
    minimum_inclusive: bool = True
    allowed: tuple[str, ...] | None = None
    description: str = ""
    # an optional column may be absent from a table (then it is all null); when present it
    # is checked like any other
    optional: bool = False


@dataclass(frozen=True)
class ForeignKey:
    column: str
    table: str
    target: str


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[ColumnSpec, ...]
    required: bool = False
    unique: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [spec.name for spec in self.columns]

    def spec(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)


CUSTOMERS = TableSchema(
    name=c.CUSTOMERS,
    columns=(
        ColumnSpec(c.CUSTOMER_ID, "str", description="pseudonymous id"),
        ColumnSpec(c.SIGNUP_DATE, "date"),
        ColumnSpec(c.REGION, "str", nullable=True),
        ColumnSpec(c.IS_MEMBER, "bool"),
        ColumnSpec(c.MEMBER_SINCE, "date", nullable=True),
        ColumnSpec(c.CONSENT_PERSONALIZATION, "bool"),
        ColumnSpec(c.CONSENT_MARKETING, "bool"),
    ),
    unique=(c.CUSTOMER_ID,),
)

PRODUCTS = TableSchema(
    name=c.PRODUCTS,
    columns=(
        ColumnSpec(c.ITEM_ID, "str"),
        ColumnSpec(c.NAME, "str"),
        ColumnSpec(c.CATEGORY, "str"),
        ColumnSpec(c.TAGS, "str", nullable=True, description="';'-separated"),
        ColumnSpec(c.LIST_PRICE, "float", minimum=0, minimum_inclusive=False),
        ColumnSpec(c.UNIT_COST, "float", nullable=True, minimum=0),
        ColumnSpec(c.STOCK, "int", nullable=True, minimum=0),
        ColumnSpec(c.PRODUCT, "str", nullable=True, optional=True, description="the product across stores"),
        ColumnSpec(c.STORE, "str", nullable=True, optional=True),
        ColumnSpec(
            c.NEXT_DELIVERY,
            "date",
            nullable=True,
            optional=True,
            description="when the next delivery is due (open purchase orders)",
        ),
    ),
    unique=(c.ITEM_ID,),
)

ORDERS = TableSchema(
    name=c.ORDERS,
    columns=(
        ColumnSpec(c.ORDER_ID, "str"),
        ColumnSpec(c.CUSTOMER_ID, "str", nullable=True, description="null for a guest"),
        ColumnSpec(c.ITEM_ID, "str"),
        ColumnSpec(c.QUANTITY, "int", minimum=1),
        ColumnSpec(c.UNIT_PRICE, "float", minimum=0),
        ColumnSpec(c.ORDERED_AT, "timestamp"),
        ColumnSpec(c.RETURNED, "bool"),
    ),
    required=True,
    foreign_keys=(
        ForeignKey(c.ITEM_ID, c.PRODUCTS, c.ITEM_ID),
        ForeignKey(c.CUSTOMER_ID, c.CUSTOMERS, c.CUSTOMER_ID),
    ),
)

EVENTS = TableSchema(
    name=c.EVENTS,
    columns=(
        ColumnSpec(c.CUSTOMER_ID, "str", nullable=True, description="null for an anonymous visitor"),
        ColumnSpec(c.ITEM_ID, "str", nullable=True, description="null only for search"),
        ColumnSpec(c.EVENT, "str", allowed=c.EVENT_TYPES),
        ColumnSpec(c.AT, "timestamp"),
    ),
    foreign_keys=(
        ForeignKey(c.ITEM_ID, c.PRODUCTS, c.ITEM_ID),
        ForeignKey(c.CUSTOMER_ID, c.CUSTOMERS, c.CUSTOMER_ID),
    ),
)

PRICE_HISTORY = TableSchema(
    name=c.PRICE_HISTORY,
    columns=(
        ColumnSpec(c.ITEM_ID, "str"),
        ColumnSpec(c.DATE, "date"),
        ColumnSpec(c.PRICE, "float", minimum=0, minimum_inclusive=False),
        ColumnSpec(c.PROMO, "bool"),
        ColumnSpec(c.FEATURE, "float", nullable=True, minimum=0, optional=True, description="0 to 1"),
    ),
    unique=(c.ITEM_ID, c.DATE),
    foreign_keys=(ForeignKey(c.ITEM_ID, c.PRODUCTS, c.ITEM_ID),),
)

# Stock at the start of `date`, as a change log (the value holds until the item's next
# row). Not in the original design: daily demand signals need to know the days an item
# was out of stock, which neither orders nor the current stock can tell.
STOCK_HISTORY = TableSchema(
    name=c.STOCK_HISTORY,
    columns=(
        ColumnSpec(c.ITEM_ID, "str"),
        ColumnSpec(c.DATE, "date"),
        ColumnSpec(c.STOCK, "int", minimum=0),
    ),
    unique=(c.ITEM_ID, c.DATE),
    foreign_keys=(ForeignKey(c.ITEM_ID, c.PRODUCTS, c.ITEM_ID),),
)

SCHEMAS: dict[str, TableSchema] = {
    schema.name: schema for schema in (CUSTOMERS, PRODUCTS, ORDERS, EVENTS, PRICE_HISTORY, STOCK_HISTORY)
}
