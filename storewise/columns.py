"""The one home for table, column and value names shared by features, training and serving.

Every module imports names from here instead of typing a column name as a string, so a
rename happens in one place and a typo is a NameError, not a silent empty column.
"""

from __future__ import annotations

# identifiers
CUSTOMER_ID = "customer_id"
ITEM_ID = "item_id"
ORDER_ID = "order_id"

# customers
SIGNUP_DATE = "signup_date"
REGION = "region"
IS_MEMBER = "is_member"
MEMBER_SINCE = "member_since"
CONSENT_PERSONALIZATION = "consent_personalization"
CONSENT_MARKETING = "consent_marketing"

# products
NAME = "name"
CATEGORY = "category"
TAGS = "tags"
LIST_PRICE = "list_price"
UNIT_COST = "unit_cost"
STOCK = "stock"
# optional, for shops with several stores (weekly sales exports): each store's product is
# its own priced item; `product` names the product it is in every store, `store` the store
PRODUCT = "product"
STORE = "store"
# optional: the day the item's next delivery is due (the shop's open purchase orders); the
# pricing policy stretches short stock until then
NEXT_DELIVERY = "next_delivery"

# orders
QUANTITY = "quantity"
UNIT_PRICE = "unit_price"
ORDERED_AT = "ordered_at"
RETURNED = "returned"

# events
EVENT = "event"
AT = "at"

# price history
DATE = "date"
PRICE = "price"
PROMO = "promo"
FEATURE = "feature"  # optional: share of the period the item was in the shop's feature advertising

# event types, in funnel order
VIEW = "view"
SEARCH = "search"
ADD_TO_CART = "add_to_cart"
PURCHASE = "purchase"
EVENT_TYPES = (VIEW, SEARCH, ADD_TO_CART, PURCHASE)

# table names (file stems under <shop>/raw/)
CUSTOMERS = "customers"
PRODUCTS = "products"
ORDERS = "orders"
EVENTS = "events"
PRICE_HISTORY = "price_history"
STOCK_HISTORY = "stock_history"
TABLES = (CUSTOMERS, PRODUCTS, ORDERS, EVENTS, PRICE_HISTORY, STOCK_HISTORY)

# tags are stored as one string, separated by this character, so that CSV and Parquet agree
TAG_SEPARATOR = ";"

# the pricing model's table (one row per item; written by training, read by the service)
REFERENCE_PRICE = "reference_price"
ELASTICITY, LOW, HIGH, SD = "elasticity", "low_90", "high_90", "sd"
RAW, RAW_SE, EVIDENCE = "raw_elasticity", "raw_se", "evidence"
BASE_RATE = "base_rate"  # expected units per unit of exposure at the reference price
EXPOSURE = "exposure"
# optional, where the model estimates cross-price effects: the items priced together (a
# store's shelf) and the elasticity of this item's demand to each other shelf item's price
SHELF = "shelf"
CROSS_ELASTICITY = "cross_elasticity"
# optional: its 90% interval (where a shelf effect was estimated, kept or not: the policy
# prices a cut at the top, a rise at the bottom)
CROSS_LOW, CROSS_HIGH = "cross_low_90", "cross_high_90"
# the lowest and highest price the item sold at in the data: where its elasticity was measured
OBSERVED_LOW, OBSERVED_HIGH = "observed_low_price", "observed_high_price"
# optional, where the data supports it: log demand's curvature in log price (relative to
# the reference price); the elasticity at a price p is elasticity + 2 curvature log(p / ref)
CURVATURE = "curvature"
# per-item model: how demand bends away from the reference price, chosen for the shop by a
# Vuong test: "constant" elasticity (log demand linear in log price) or "semi-log" (log
# demand linear in the price: elasticity e * p / reference, growing with the price, as
# with straight-line demand)
DEMAND_SHAPE = "demand_shape"
CONSTANT, SEMI_LOG = "constant", "semi-log"
# the pricing model's periods from the end of the data until the next delivery is due (NaN:
# none known, or overdue)
DELIVERY_PERIODS = "delivery_periods"
