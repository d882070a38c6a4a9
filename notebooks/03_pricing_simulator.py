# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The pricing simulator
# Fit elasticities on the demo shop, compare them with the generator's truth, and run the
# fixed list price, the optimizer and the oracle forward on the true demand.

# %%
import os
from pathlib import Path

import pandas as pd

from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.writer import write_generated_shop
from features.pipeline import Outputs, build_features, load_output
from storewise.settings import load_pricing_settings
from storewise.shop import ShopPaths
from training.pricing.elasticity import estimate_elasticities
from training.pricing.build import build_pricing_model
from training.pricing.simulate import simulate
from training.pricing.train import truth_metrics

shop = ShopPaths(Path(os.environ.get("STOREWISE_NOTEBOOK_SHOP", "data/notebook-pricing")))
if not shop.raw.exists():
    write_generated_shop(shop, generate_shop(GeneratorSettings(customers=30_000, products=30, days=365, seed=5)))
build_features(shop)
settings = load_pricing_settings()
demand = load_output(shop, Outputs.DEMAND)
products = pd.read_parquet(shop.table("products"))
elasticities, exposure = estimate_elasticities(demand, products, settings.elasticity)
truth_metrics(elasticities, shop, settings)

# %%
model = build_pricing_model(elasticities, demand, products, settings, "RM", exposure)
result = simulate(shop, model, days=30, seed=1)
result.summary[["policy", "profit", "units", "stockout_item_days", "profit_share_of_oracle"]]

# %%
assert result.summary.set_index("policy").loc["optimizer", "profit_share_of_oracle"] > 0.8
