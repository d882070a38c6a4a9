# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Train two recommender runs and compare them in MLflow
# Two configurations, the same data and split; the comparison report shows them side by
# side with every baseline, and the promotion gate decides which one goes live. Uses a
# throw-away MLflow store unless `MLFLOW_TRACKING_URI` is set.

# %%
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.writer import write_generated_shop
from features.pipeline import build_features
from storewise.config import CONFIG_DIR
from storewise.shop import ShopPaths
from training.recommender.train import train_recommender
from reports.comparison import compare
from training.promotion import promote

work = Path(tempfile.mkdtemp(prefix="notebook-"))
os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
shop = ShopPaths(Path(os.environ.get("STOREWISE_NOTEBOOK_SHOP", work / "shop")))
if not shop.raw.exists():
    write_generated_shop(shop, generate_shop(GeneratorSettings(customers=10_000, products=40, days=180, seed=7)))


def config_with(**lightfm: object) -> Path:
    target = work / f"config-{len(list(work.glob('config-*')))}"
    shutil.copytree(CONFIG_DIR, target)
    settings = yaml.safe_load((target / "recommender.yaml").read_text())
    settings["lightfm"].update({"max_epochs": 8, "threads": 1, **lightfm})
    settings["evaluation"]["validation_folds"] = 1
    (target / "recommender.yaml").write_text(yaml.safe_dump(settings))
    return target


small, large = config_with(components=8), config_with(components=32)
build_features(shop, config_dir=small)

# %%
first = train_recommender(shop, config_dir=small)
second = train_recommender(shop, config_dir=large)
print("NDCG@10 hybrid:", round(first.value("hybrid"), 4), "vs", round(second.value("hybrid"), 4))

# %%
report = compare([str(first.run_id), str(second.run_id)], work / "comparison.html")
print("report:", report)
for version in (first.version, second.version):
    print(promote("storewise-recommender", version))

# %%
assert report.exists() and "NDCG@10 by model" in report.read_text()
