# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Explore a shop
# A look at a shop's data before modelling: what it sells, how customers buy, where the
# funnel leaks. Runs on the demo shop by default (`STOREWISE_NOTEBOOK_SHOP` to point elsewhere).

# %%
import os
from pathlib import Path

import pandas as pd

from intake.check import check_tables
from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.writer import write_generated_shop
from features.pipeline import Outputs, build_features, load_output
from intake.tables import read_tables
from storewise.shop import ShopPaths

shop = ShopPaths(Path(os.environ.get("STOREWISE_NOTEBOOK_SHOP", "data/notebook-demo")))
if not shop.raw.exists():
    write_generated_shop(shop, generate_shop(GeneratorSettings(customers=8_000, products=40, days=180)))
build_features(shop)
tables = read_tables(shop)
report = check_tables(tables, shop.settings().tz)
print("valid:", report.ok)
pd.Series(report.summary)

# %% [markdown]
# ## What sells
# %%
orders = tables["orders"]
products = tables["products"].set_index("item_id")
sales = orders[~orders["returned"]].assign(category=lambda frame: frame["item_id"].map(products["category"]))
by_category = sales.groupby("category").agg(lines=("item_id", "size"), units=("quantity", "sum"))
by_category.sort_values("units", ascending=False)

# %% [markdown]
# ## Who buys: RFM segments
# %%
rfm = load_output(shop, Outputs.RFM)
rfm["segment"].value_counts()

# %% [markdown]
# ## Where the funnel leaks
# %%
funnel = load_output(shop, Outputs.JOURNEY)
funnel[funnel["segment"] == "all"][["period", "viewed", "carted", "purchased", "view_to_cart", "cart_to_purchase"]]

# %%
assert len(rfm) > 0 and set(rfm["segment"]) <= {
    "champions", "loyal", "potential loyalists", "new", "promising", "need attention", "at risk", "can't lose", "hibernating", "lost",
}
