"""Training, MLflow logging and registration, the promotion gate, compare and batch recommend."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from features.manifest import read_manifest
from features.pipeline import build_features
from inference.recommender.pyfunc import batch_top_k, load_bundle
from inference.recommender.scoring import lightfm_top_items, unranked
from inference.registry import RECOMMENDER
from intake.demo.generate import GeneratorSettings, generate_shop
from intake.demo.writer import write_generated_shop
from reports.comparison import compare
from storewise import columns as c
from storewise.shop import ShopPaths
from tests.helpers import fast_config, imported_after
from training.promotion import RegistryError, promote
from training.recommender import background as background_jobs
from training.recommender.background import Shared, fit_components, fit_lightfm
from training.recommender.data import TrainData, split_cutoffs
from training.recommender.hybrid import with_lightfm
from training.recommender.outcome import TrainOutcome
from training.recommender.relations import cached_name_similarity
from training.recommender.train import STEPS, train_recommender
from training.recommender.trainer import Trainer

pytestmark = pytest.mark.xdist_group("mlflow")


# Enough history per customer for personalization to show in a few seconds of training.
TRAINING_SHOP = GeneratorSettings(customers=10_000, products=40, days=180, seed=7)


@pytest.fixture(scope="module")
def training_shop(tmp_path_factory: pytest.TempPathFactory) -> ShopPaths:
    shop = ShopPaths(tmp_path_factory.mktemp("training") / "shop")
    write_generated_shop(shop, generate_shop(TRAINING_SHOP))
    return shop


def build_copy(training_shop: ShopPaths, folder: Path) -> tuple[ShopPaths, Path]:
    shop = ShopPaths(folder / "shop")
    shutil.copytree(training_shop.root, shop.root)
    config = fast_config(folder)
    build_features(shop, config_dir=config)
    return shop, config


@pytest.fixture
def built_shop(training_shop: ShopPaths, tmp_path: Path) -> tuple[ShopPaths, Path]:
    return build_copy(training_shop, tmp_path)


@pytest.fixture(scope="module")
def trained(
    training_shop: ShopPaths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ShopPaths, Path, TrainOutcome]]:
    """One training run in its own store, read by the tests that do not train (a training is
    most of this module's time)."""
    folder = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        shop, config = build_copy(training_shop, folder)
        yield shop, config, train_recommender(shop, config_dir=config)


def store_of(outcome: TrainOutcome) -> mlflow.MlflowClient:
    """The store `outcome` was written to, as this process's MLflow store too (`models:/`
    URIs): it was written by another process (`training/tracking_process.py`), which left
    this one's MLflow as it was."""
    assert outcome.tracking_uri is not None
    mlflow.set_tracking_uri(outcome.tracking_uri)
    mlflow.set_registry_uri(outcome.tracking_uri)
    return mlflow.MlflowClient(outcome.tracking_uri, registry_uri=outcome.tracking_uri)


def test_a_run_logs_the_comparison_learning_curve_and_a_registered_model(
    trained: tuple[ShopPaths, Path, TrainOutcome],
) -> None:
    _, _, outcome = trained
    assert outcome.version == "1"
    client = store_of(outcome)
    run = client.get_run(str(outcome.run_id))
    metrics = run.data.metrics
    for protocol in ("discovery", "all_purchases", "business_rules"):
        for model in (
            "hybrid",
            "lightfm",
            "popularity",
            "trending",
            "cooccurrence",
            "buy_again",
            "ease_binary",
            "item_knn_bm25_counts",
            "als_binary",
        ):
            assert f"{protocol}.{model}.ndcg_at_10" in metrics, (protocol, model)
    assert metrics["ndcg_at_10"] == pytest.approx(outcome.value("hybrid"))
    history = client.get_metric_history(str(outcome.run_id), "validation.lightfm.ndcg_at_10")
    assert [point.step for point in history] == list(range(1, len(history) + 1))
    assert [(point.step, point.value) for point in history] == outcome.learning_curve
    # the gate's tags, on the registered version
    tags = client.get_model_version(RECOMMENDER, "1").tags
    assert tags["run_id"] == outcome.run_id
    assert tags["data_hash"] == run.data.tags["data_hash"]
    assert tags["primary_protocol"] == outcome.primary_protocol
    assert float(tags["ndcg_at_10"]) == pytest.approx(outcome.value("hybrid"), abs=1e-6)
    assert tags["beats_baselines.discovery"] == run.data.tags["beats_baselines.discovery"]
    assert run.data.tags["data_hash"]
    assert run.data.tags["split"].startswith("test ")
    assert run.data.params["lightfm.components"] == "16"
    artifacts = {item.path for item in client.list_artifacts(str(outcome.run_id), "reports")}
    assert {
        "reports/comparison.csv",
        "reports/learning_curve.png",
        "reports/ndcg_at_10_by_model.png",
        "reports/environment.json",
    } <= artifacts


def test_the_hybrid_beats_its_baselines_on_the_training_shop(
    trained: tuple[ShopPaths, Path, TrainOutcome],
) -> None:
    _, _, outcome = trained
    _, best = outcome.best_other()
    assert outcome.value("hybrid") > best
    assert outcome.value("lightfm") > outcome.value("popularity")


def test_the_model_reloaded_from_mlflow_gives_the_same_top_k(
    trained: tuple[ShopPaths, Path, TrainOutcome],
) -> None:
    _shop, _, outcome = trained
    assert outcome.bundle is not None
    before = load_bundle(outcome.bundle)
    customers = [*list(before.model.user_ids[:25]), "unknown-customer"]
    expected = batch_top_k(before, customers, [10] * len(customers))
    store_of(outcome)
    loaded = mlflow.pyfunc.load_model(f"models:/{RECOMMENDER}/{outcome.version}")
    got = loaded.predict(
        pd.DataFrame({c.CUSTOMER_ID: customers, "k": np.full(len(customers), 10, dtype=np.int64)})
    )
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))


def test_the_gate_refuses_a_worse_model_and_records_force(
    built_shop: tuple[ShopPaths, Path], mlflow_store: str, tmp_path: Path
) -> None:
    shop, config = built_shop
    good = train_recommender(shop, config_dir=config)
    first = promote(RECOMMENDER, good.version)
    assert first.promoted
    assert first.reason.startswith("first champion")
    # a deliberately worse model: popularity alone, by blend grid, on the same data and split
    worse_config = fast_config(tmp_path / "worse", **{"blend.grid": [0, 1.0], "lightfm.max_epochs": 1})
    (worse_config / "features.yaml").write_text((config / "features.yaml").read_text())
    worse = train_recommender(shop, config_dir=worse_config)
    if worse.value("hybrid") >= good.value("hybrid"):
        pytest.skip("the degraded configuration did not come out worse on this data")
    refused = promote(RECOMMENDER, worse.version)
    assert not refused.promoted
    assert refused.reason.endswith(f"champion v{good.version} stays"), refused.reason
    assert (
        str(mlflow.MlflowClient().get_model_version_by_alias(RECOMMENDER, "champion").version) == good.version
    )
    forced = promote(RECOMMENDER, worse.version, force=True)
    assert forced.promoted
    tags = mlflow.MlflowClient().get_model_version(RECOMMENDER, str(worse.version)).tags
    assert tags["promoted_with_force"] == "true"
    report = compare([str(good.run_id), str(worse.run_id)], tmp_path / "report.html")
    text = report.read_text()
    assert "NDCG@10 by model" in text
    assert "data:image/png;base64," in text
    assert "blend.business_rules" in text, "the differing blend weights are listed"
    table = pd.read_csv(report.with_suffix(".csv"), index_col=0)
    assert "business_rules.popularity.ndcg_at_10" in table.index


def test_promote_without_versions_is_a_clear_error(mlflow_store: str) -> None:
    with pytest.raises(RegistryError, match="no versions of 'storewise-recommender' are registered"):
        promote(RECOMMENDER)


def test_batch_recommend_cli_normalizes_ids(
    trained: tuple[ShopPaths, Path, TrainOutcome], tmp_path: Path
) -> None:
    shop, _, outcome = trained
    promote(RECOMMENDER, outcome.version)
    assert outcome.bundle is not None
    known = [str(value) for value in load_bundle(outcome.bundle).model.user_ids[:3]]
    ids = tmp_path / "ids.txt"
    ids.write_text("customer_id\n" + "\n".join([*known, known[0], "nobody", ""]) + "\n")
    out = tmp_path / "recs.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "recommend",
            "--customers",
            str(ids),
            "--out",
            str(out),
            "--k",
            "5",
            "--shop-dir",
            str(shop.root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "4 customers (3 personalized" in done.stdout
    table = pd.read_csv(out, dtype={c.CUSTOMER_ID: str})
    assert list(table.columns) == [c.CUSTOMER_ID, c.ITEM_ID, "rank", "score", "reason"]
    assert table.groupby(c.CUSTOMER_ID).size().to_dict() == {**{k: 5 for k in known}, "nobody": 5}
    orders = pd.read_parquet(shop.table(c.ORDERS))
    bought = set(zip(orders[c.CUSTOMER_ID], orders[c.ITEM_ID], strict=True))
    assert not any((row.customer_id, row.item_id) in bought for row in table.itertuples()), (
        "bought items are excluded by default"
    )


def test_the_cli_trains_here_and_registers_the_run_without_importing_mlflow_here(
    built_shop: tuple[ShopPaths, Path], tmp_path: Path
) -> None:
    """MLflow is imported, the store opened and the run written by a process of its own
    (`training/tracking_process.py`) while this one trains: this one never imports MLflow."""
    shop, config = built_shop
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, modules = imported_after(
        ["train", "recommender", "--shop-dir", str(shop.root)],
        env={"MLFLOW_TRACKING_URI": store, "STOREWISE_CONFIG_DIR": str(config)},
    )
    assert code == 0
    assert "training.recommender.train" in modules  # it trained here
    assert {name.split(".")[0] for name in modules} & {
        "mlflow",
        "matplotlib",
        "sqlalchemy",
        "alembic",
    } == set()
    client = mlflow.MlflowClient(store, registry_uri=store)
    version = client.get_model_version(RECOMMENDER, "1")
    run = client.get_run(str(version.run_id))
    assert run.info.status == "FINISHED"
    manifest = read_manifest(shop)
    assert manifest is not None
    assert run.data.tags["data_hash"] == version.tags["data_hash"] == manifest["input_hash"]
    assert float(version.tags["ndcg_at_10"]) == pytest.approx(run.data.metrics["ndcg_at_10"], abs=1e-6)


def test_a_store_that_cannot_be_opened_fails_the_training_in_one_line(
    built_shop: tuple[ShopPaths, Path], tmp_path: Path
) -> None:
    shop, config = built_shop
    (tmp_path / "taken").write_text("a file where the store's folder would go")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "train", "recommender", "--shop-dir", str(shop.root)],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'taken' / 'mlflow.db'}",
            "STOREWISE_CONFIG_DIR": str(config),
        },
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "Warning" not in done.stderr, done.stderr[-3000:]  # nothing after the one line
    assert (
        f"error: could not open the tracking store sqlite:///{tmp_path / 'taken' / 'mlflow.db'}: "
        "FileExistsError" in done.stderr
    ), done.stderr[-2000:]
    assert "wrote run" not in done.stdout


def test_a_catalogue_too_large_for_ease_trains_without_it(
    built_shop: tuple[ShopPaths, Path], tmp_path: Path
) -> None:
    shop, config = built_shop
    small = fast_config(tmp_path / "no_ease", **{"components.max_ease_items": 10, "lightfm.max_epochs": 2})
    (small / "features.yaml").write_text((config / "features.yaml").read_text())
    outcome = train_recommender(shop, config_dir=small, register=False)
    blended = {name for weights in outcome.blends.values() for name in weights}
    assert not any(name.startswith("ease") for name in blended), blended
    assert not any(str(model).startswith("ease") for model in outcome.comparison["model"].unique())
    assert outcome.value("hybrid") > 0


def test_with_warm_starts_each_later_lightfm_continues_the_one_before(
    built_shop: tuple[ShopPaths, Path], tmp_path: Path
) -> None:
    """Two folds, the test weeks and the final fit: early stopping on the earlier fold,
    then 2 more epochs for each of the latest fold, the test weeks and the final model."""
    shop, config = built_shop
    warm = fast_config(
        tmp_path / "warm",
        **{"lightfm.warm_start_epochs": 2, "lightfm.max_epochs": 3, "evaluation.validation_folds": 2},
    )
    (warm / "features.yaml").write_text((config / "features.yaml").read_text())
    outcome = train_recommender(shop, config_dir=warm, register=False)
    assert outcome.bundle is not None
    info = json.loads((outcome.bundle / "hybrid" / "model.json").read_text())["info"]
    best_epoch = max(outcome.learning_curve, key=lambda point: point[1])[0]
    assert info["lightfm_epochs"] == best_epoch + 3 * 2
    assert outcome.value("hybrid") > outcome.value("popularity")


def test_lightfm_fitted_in_the_second_process_gives_the_same_run_as_inline(
    built_shop: tuple[ShopPaths, Path], tmp_path: Path
) -> None:
    """By default a run's jobs go to a second process (`lightfm.background`): its later
    LightFMs (here the second fold's, the test weeks' and the final fit's, with its top items
    in parts), the test weeks' peers, the name similarity, every fold's and the final fit's
    hybrid without LightFM, the blend's and the test comparison's; this process's BLAS on
    one thread meanwhile. Inline, every number and the registered model are the same."""
    shop, config = built_shop
    outcomes = {}
    for background in (True, False):
        folder = fast_config(
            tmp_path / str(background),
            **{"lightfm.background": background, "evaluation.validation_folds": 2, "lightfm.max_epochs": 4},
        )
        (folder / "features.yaml").write_text((config / "features.yaml").read_text())
        outcomes[background] = train_recommender(shop, config_dir=folder, register=False)
    there, here = outcomes[True], outcomes[False]
    assert len(here.learning_curve) >= 2
    assert here.learning_curve == there.learning_curve
    assert set(here.seconds) == set(there.seconds) == {*STEPS, "total"}  # every step timed
    assert "lightfm" in {name for weights in here.blends.values() for name in weights}, here.blends
    pd.testing.assert_frame_equal(here.comparison, there.comparison)
    pd.testing.assert_frame_equal(here.intervals, there.intervals)
    assert here.blends == there.blends
    assert here.bundle is not None
    assert there.bundle is not None
    arrays_here = np.load(here.bundle / "hybrid" / "arrays.npz")
    for name in ("user_embedding", "item_embedding", "item_bias"):
        assert arrays_here[name].size
    # every array of the registered hybrid: LightFM's and the other components' (fitted over
    # there too), the item-item matrices included
    files = sorted(path.relative_to(here.bundle) for path in here.bundle.rglob("*.np[yz]"))
    assert Path("hybrid/similarity_ease.npz") in files, files
    assert files == sorted(path.relative_to(there.bundle) for path in there.bundle.rglob("*.np[yz]"))
    for file in files:
        if file.suffix == ".npy":
            np.testing.assert_array_equal(np.load(here.bundle / file), np.load(there.bundle / file))
            continue
        stored_here, stored_there = np.load(here.bundle / file), np.load(there.bundle / file)
        assert stored_here.files == stored_there.files
        for name in stored_here.files:
            np.testing.assert_array_equal(stored_here[name], stored_there[name], err_msg=f"{file} {name}")
    top_here, top_there = (
        np.load(bundle / "hybrid" / "lightfm_top.npy") for bundle in (here.bundle, there.bundle)
    )
    assert top_here.size
    np.testing.assert_array_equal(top_here, top_there)


def test_a_hybrid_fitted_as_a_job_is_fitted_on_one_blas_thread_wherever_it_runs(
    built_shop: tuple[ShopPaths, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folds' and the final fit's components are jobs that run in the other process (one
    BLAS thread) or here: here too on one thread, whatever this process allows, since EASE's
    inverse on two threads differs in the last bits (the sample x 3's neighbour lists did),
    and the run must not depend on where they were fitted."""
    shop, _ = built_shop
    trainer = Trainer(shop)
    data = trainer.data_at(trainer.orders[c.ORDERED_AT].max())
    seen: list[int] = []

    def recording(*arguments: object, **keywords: object) -> str:
        seen.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
        return "fitted"

    monkeypatch.setattr(background_jobs, "fit_hybrid", recording)
    with threadpool_limits(2, "blas"):
        shared = Shared(trainer.orders, None), Shared(trainer.prepared.codes, None)
        fitted = fit_components(data, *shared, trainer.settings, {"ease"})
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {2}
    assert fitted == "fitted"
    assert seen
    assert set(seen) == {1}


def test_with_search_the_final_lightfm_has_the_best_trials_settings_and_its_top_items(
    built_shop: tuple[ShopPaths, Path], tmp_path: Path
) -> None:
    """`--search` tries LightFM settings before early stopping, so the final fit's LightFM is
    not trained alongside it but queued once the epochs are chosen; the registered model has
    a trial's components (not the configured 16) and every customer's top items by its own
    representations (spare jobs in either process)."""
    shop, config = built_shop
    folder = fast_config(
        tmp_path / "search",
        **{"search.components": [8, 12], "search.learning_rate": [0.05], "lightfm.max_epochs": 3},
    )
    (folder / "features.yaml").write_text((config / "features.yaml").read_text())
    outcome = train_recommender(shop, config_dir=folder, search=True, register=False)
    assert outcome.bundle is not None
    arrays = np.load(outcome.bundle / "hybrid" / "arrays.npz")
    assert arrays["user_embedding"].shape[1] in {8, 12}
    top = np.load(outcome.bundle / "hybrid" / "lightfm_top.npy")
    expected = lightfm_top_items(
        arrays["user_embedding"], arrays["item_embedding"], arrays["item_bias"], top.shape[1]
    )
    assert top.shape == (len(arrays["user_embedding"]), min(200, len(arrays["item_embedding"])))
    np.testing.assert_array_equal(top, expected)


@pytest.mark.parametrize("screen", [True, False], ids=["screened", "on-every-fold"])
def test_a_lightfm_no_blend_uses_is_not_fitted_on_the_test_weeks(
    built_shop: tuple[ShopPaths, Path], tmp_path: Path, screen: bool
) -> None:
    """A LightFM that learns next to nothing (one epoch at a tiny learning rate) pays its way
    in no blend: the test comparison leaves it out instead of fitting it on the test weeks
    (the run's most expensive model), and the registered model still has its embeddings
    (similar items, audiences and new items read them). The screen leaves it out after the
    latest fold; without it (`lightfm.screen: false`) it is fitted on both folds and the
    tuning on both weighs it (each component alone is scored there) and leaves it. The
    reranker is off: trees adopted read every component on the folds, and discovery's are
    adopted unjudged (`rerank.adopt_always`), so with LightFM on every fold they read it too."""
    shop, config = built_shop
    weak = fast_config(
        tmp_path / "weak",
        **{
            "lightfm.learning_rate": 1e-6,
            "lightfm.max_epochs": 1,
            "lightfm.screen": screen,
            "evaluation.validation_folds": 2,
            "rerank.enabled": False,
        },
    )
    (weak / "features.yaml").write_text((config / "features.yaml").read_text())
    outcome = train_recommender(shop, config_dir=weak, register=False)
    assert outcome.validation
    assert all(("lightfm" in blend.singles) is not screen for blend in outcome.validation.values())
    assert outcome.lightfm_confirmation is None  # never asked: screened out, or no screen
    assert not any("lightfm" in weights for weights in outcome.blends.values()), outcome.blends
    assert "lightfm" not in set(outcome.comparison["model"])
    assert "lightfm" not in set(outcome.intervals["model"])
    assert {"ease_binary", "tifu_knn", "popularity"} <= set(outcome.intervals["model"])
    assert outcome.bundle is not None
    arrays = np.load(outcome.bundle / "hybrid" / "arrays.npz")
    assert arrays["item_embedding"].shape[0] > 0
    info = json.loads((outcome.bundle / "hybrid" / "model.json").read_text())["info"]
    assert info["lightfm_blended"] is False
    assert info["lightfm_epochs"] == 1


def test_the_test_weeks_see_the_catalogue_as_it_was_at_their_start(
    built_shop: tuple[ShopPaths, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test comparison is fitted and judged on the catalogue as of the test cutoff (an
    item launched later could not have been offered), the folds and the registered model on
    the whole catalogue; a smaller catalogue's name similarity is the whole one's, restricted
    to its items."""
    shop, config = built_shop
    quick = fast_config(tmp_path / "quick", **{"lightfm.max_epochs": 2})
    (quick / "features.yaml").write_text((config / "features.yaml").read_text())
    calls: list[tuple[pd.Timestamp, bool]] = []
    data_at = Trainer.data_at

    def recorded(self: Trainer, cutoff: pd.Timestamp, *, listed_only: bool = False) -> TrainData:
        calls.append((cutoff, listed_only))
        return data_at(self, cutoff, listed_only=listed_only)

    monkeypatch.setattr(Trainer, "data_at", recorded)
    outcome = train_recommender(shop, config_dir=quick, register=False)
    trainer = Trainer(shop, quick, None)
    windows = trainer.settings.evaluation
    test_cutoff, end = split_cutoffs(trainer.orders, windows.test_days, windows.validation_days)["test"]
    assert [cutoff for cutoff, listed_only in calls if listed_only] == [test_cutoff]
    assert (end, False) in calls

    assert (test_cutoff, False) not in calls
    launched = data_at(trainer, test_cutoff, listed_only=True).n_items
    assert outcome.unlaunched_items == data_at(trainer, end).n_items - launched
    # a smaller catalogue has its own name similarity, computed once
    early = data_at(trainer, trainer.orders[c.ORDERED_AT].min() + pd.Timedelta(days=60), listed_only=True)
    whole = data_at(trainer, end)
    assert 0 < len(early.item_ids) < len(whole.item_ids), "the demo shop launches items later"
    neighbours = trainer.settings.components.item_neighbours
    own = cached_name_similarity(early.item_features, early.item_feature_names, neighbours)
    assert own.shape == (len(early.item_ids),) * 2
    assert own.nnz
    # computed once per catalogue, whatever the cutoff
    earlier = data_at(trainer, test_cutoff)
    assert cached_name_similarity(whole.item_features, whole.item_feature_names, neighbours) is (
        cached_name_similarity(earlier.item_features, earlier.item_feature_names, neighbours)
    )
    # its own words' weights and neighbours, not the whole catalogue's cut down
    positions = pd.Index(whole.item_ids).get_indexer(early.item_ids)
    cut_down = cached_name_similarity(whole.item_features, whole.item_feature_names, neighbours)
    assert (own != cut_down[positions][:, positions]).nnz


def test_the_top_items_computed_by_the_runs_jobs_are_the_hybrids_own(
    built_shop: tuple[ShopPaths, Path],
) -> None:
    """The final fit's and the test weeks' LightFM bring every customer's best items from the
    run's jobs (the process that fitted the test weeks', parts in either process for the
    final fit's); they must be exactly what the hybrid would compute itself, and each row
    LightFM's scores sorted best first."""
    shop, config = built_shop
    trainer = Trainer(shop, config)
    data = trainer.data_at(trainer.orders[c.ORDERED_AT].max())
    candidates = 15
    lightfm = fit_lightfm(trainer.lightfm(2), data, top_items=candidates)
    assert lightfm.top_items is not None
    hybrid = with_lightfm(trainer.hybrid(data, None, components={"popularity"}), lightfm, data)
    hybrid.candidates = candidates
    hybrid.precompute_lightfm_top()
    np.testing.assert_array_equal(hybrid.lightfm_top, lightfm.top_items)
    hybrid.precompute_lightfm_top(lightfm.top_items[:, :5])  # not this hybrid's width: recomputed
    np.testing.assert_array_equal(hybrid.lightfm_top, lightfm.top_items)
    for user in (0, data.n_users // 2, data.n_users - 1):
        scores = lightfm.user_embedding[user].astype(np.float32) @ lightfm.item_embedding.astype(
            np.float32
        ).T + lightfm.item_bias.astype(np.float32)
        assert np.all(np.diff(scores[lightfm.top_items[user].astype(np.int64)]) <= 0)
        assert scores[lightfm.top_items[user][-1]] >= np.sort(scores)[-candidates]


def test_top_items_for_some_customers_rank_them_as_everyones_and_the_rest_on_the_fly(
    built_shop: tuple[ShopPaths, Path],
) -> None:
    """The test weeks' LightFM brings the best items of the test customers only (the test
    comparison's hybrid scores no one else): their rows are the ones computed for everyone,
    the others are marked unranked, and a hybrid holding them ranks the test customers as
    with everyone's rows and anyone else as with none (from the representations)."""
    shop, config = built_shop
    trainer = Trainer(shop, config)
    data = trainer.data_at(trainer.orders[c.ORDERED_AT].max())
    candidates = 15
    everyone = fit_lightfm(trainer.lightfm(2), data, top_items=candidates)
    judged = np.array([data.n_users - 1, 3, 0])
    some = fit_lightfm(trainer.lightfm(2), data, top_items=candidates, users=judged)
    assert some.top_items is not None
    assert everyone.top_items is not None
    np.testing.assert_array_equal(some.top_items[judged], everyone.top_items[judged])
    best = everyone.top_items
    others = np.setdiff1d(np.arange(data.n_users), judged)
    assert (some.top_items[others] == unranked(some.top_items.dtype)).all()

    def ranked_lists(top: np.ndarray | None, users: np.ndarray) -> list[list[int]]:
        hybrid = with_lightfm(trainer.hybrid(data, None, components={"popularity"}), everyone, data)
        hybrid.candidates = candidates
        hybrid.lightfm_top = top
        # each customer's best two blocked: a precomputed list loses them, one ranked here refills
        blocked = [best[user][:2].astype(np.int64) for user in users]
        ranks = sp.csr_matrix(hybrid.component_ranks("lightfm", users, blocked))
        # each row's items, best first (rank scores fall with the rank)
        return [
            ranks.indices[start:end][np.argsort(-ranks.data[start:end], kind="stable")].tolist()
            for start, end in zip(ranks.indptr[:-1], ranks.indptr[1:], strict=True)
        ]

    mixed = np.array([1, 3, data.n_users - 1, 2])  # judged and not, interleaved
    got = ranked_lists(some.top_items, mixed)
    with_all, with_none = ranked_lists(everyone.top_items, mixed), ranked_lists(None, mixed)
    assert [got[1], got[2]] == [with_all[1], with_all[2]]
    assert [got[0], got[3]] == [with_none[0], with_none[3]]
    assert [len(got[1]), len(got[0])] == [candidates - 2, candidates]
