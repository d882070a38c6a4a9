"""Benchmark: the recommender on the online-retail sample exactly as a shop would run it,
through the `storewise` CLI, under both protocols, with every difference's interval.

1. `data import` → `features build` → `train recommender --test-days 30 --validation-days 30`
   on the whole sample (timed): the test comparison of the hybrid against every peer on the
   last 30 days, and each test customer's NDCG@10 per model (`reports/per_customer.csv`).
2. The same flow on the history before that test window only, then `recommend --k 10`
   (discovery: bought items left out) and `recommend --k 10 --include-purchased` (all
   purchases) for the customers with history who bought in the 30 days; each one's NDCG@10
   against what they bought, and the paired bootstrap 90% interval over customers of the
   CLI's answers minus every peer of step 1 (same customers, same split). Each customer's
   figures go to `per_customer_<protocol>.csv` in the work folder (`cli` and every peer;
   `bench_training_size` pairs them across shops).
3. With `--copies 3`, step 1 on the sample repeated three times as other customers (about
   330,000 lines, the stand-in for a 360,000-line export): the training time.

    uv run python -m benchmarks.bench_retail_cli [--copies 3] [--work DIR] [--half 0|1 [--split-seed S] | --part N --parts K [--split-seed S] | --wide] [--sample EXPORT --out FILE] [--lightfm-seed N] [--keep-lightfm]

MLflow goes to a store in the work directory. Results: benchmarks/results/retail_cli.json;
`--half N` runs steps 1-2 on half of the sample's customers as its own shop (those whose id
is even, N = 0, or odd; guest lines by invoice number), results retail_cli_half<N>.json;
with `--split-seed S`, the halves are drawn by a hash of S and the id instead (results
retail_cli_half<N>_split<S>.json); `--part N --parts K` runs them on part N of K (by id
modulo K, or with `--split-seed` by the hash; a seed's parts of four lie inside its halves),
results retail_cli_part<N>of<K>[_split<S>].json; `--sample` on another export; `--lightfm-seed N` with LightFM's seed N instead of the
configured one, results retail_cli_lightfm_seed<N>.json; `--wide` runs steps 1-2 on a
stand-in closer to the unseen export than × 3 (`wide`: about 400,000 lines, 3,200
customers, 3,700 items), results retail_cli_wide.json; `--keep-lightfm` with LightFM fitted on
every fold whatever the latest fold says (`lightfm.screen: false`; the time of a run where it
stays in the blends), results with `_keep_lightfm` added to the name.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "retail_cli.json"
SAMPLE = HERE.parent.parent / "shared" / "data" / "online-retail-sample.csv.gz"
PROTOCOLS = {"discovery": [], "all_purchases": ["--include-purchased"]}


def storewise(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"storewise {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return done.stdout


def train(export: Path, shop: Path) -> dict[str, Any]:
    """Import, build features and train; the run id, version and the training's seconds."""
    storewise("data", "import", str(export), "--format", "online-retail", "--shop-dir", str(shop))
    storewise("features", "build", "--shop-dir", str(shop))
    started = time.perf_counter()
    out = storewise(
        "train", "recommender", "--shop-dir", str(shop), "--test-days", "30", "--validation-days", "30"
    )
    seconds = time.perf_counter() - started
    steps = out.split("time: ")[1].splitlines()[0]
    return {
        "run": out.split("wrote run ")[1].split()[0],
        "version": out.split("registered storewise-recommender version ")[1].split()[0],
        "wall_seconds": round(seconds, 1),
        "steps": steps,
        "printed": out,
    }


def repeated(sample: Path, copies: int, out: Path) -> int:
    """The sample `copies` times, each copy other customers (ids + k * 100,000) and other
    invoices (the number suffixed with k): same catalogue, `copies` times the customers."""
    lines = pd.read_csv(sample, dtype=str, keep_default_na=False)
    parts = []
    for k in range(copies):
        part = lines.copy()
        if k:
            part["InvoiceNo"] = part["InvoiceNo"] + str(k)
            known = part["CustomerID"] != ""
            ids = part.loc[known, "CustomerID"].astype(float) + k * 100_000
            part.loc[known, "CustomerID"] = ids.map("{:.1f}".format)
        parts.append(part)
    pd.concat(parts).to_csv(out, index=False, compression="gzip")
    return sum(len(part) for part in parts)


WIDE_COPIES, WIDE_KEEP, WIDE_NEW_ITEMS = 4, 0.82, 0.04


def wide(sample: Path, out: Path) -> dict[str, int]:
    """A stand-in closer to the export the outside check uses (about 360,000 lines, 3,231
    customers and 3,739 items in its history) than the sample × 3, whose customers are exact
    copies of 915 and whose catalogue is the sample's: `WIDE_COPIES` copies, each as other
    customers and invoices (as `repeated`); every copy after the first keeps a share
    `WIDE_KEEP` of its customers (guests all), and from the third on a share
    `WIDE_NEW_ITEMS` of its stock codes are other items (the code suffixed). Chosen by a hash
    of the copy and the id: the same export on every machine."""

    def share(key: str) -> float:
        return int(hashlib.md5(key.encode()).hexdigest()[:8], 16) / 16**8

    lines = pd.read_csv(sample, dtype=str, keep_default_na=False)
    parts = [lines]
    for k in range(1, WIDE_COPIES):
        part = lines[lines["CustomerID"].map(lambda c, k=k: c == "" or share(f"{k}:{c}") < WIDE_KEEP)].copy()
        part["InvoiceNo"] = part["InvoiceNo"] + str(k)
        known = part["CustomerID"] != ""
        ids = part.loc[known, "CustomerID"].astype(float) + k * 100_000
        part.loc[known, "CustomerID"] = ids.map("{:.1f}".format)
        if k >= 2:
            other = part["StockCode"].map(lambda code, k=k: share(f"item{k}:{code}") < WIDE_NEW_ITEMS)
            part.loc[other, "StockCode"] = part.loc[other, "StockCode"] + f"W{k}"
        parts.append(part)
    everything = pd.concat(parts)
    everything.to_csv(out, index=False, compression="gzip")
    return {
        "lines": len(everything),
        "customers": int(everything["CustomerID"].replace("", None).nunique()),
        "stock_codes": int(everything["StockCode"].nunique()),
    }


def part(sample: Path, which: int, out: Path, parts: int = 2, split_seed: int | None = None) -> int:
    """The sample's lines of part `which` of `parts` of its customers, written to `out`; the
    number of customers. By numeric id modulo `parts` (guest lines by their invoice
    number's: with two parts, the parity halves). With `split_seed`, by a hash of the seed
    and the id instead: other customer sets of the same size, the parts each other's
    complements, the same on every machine. A seed's parts of four lie inside its halves
    (part 0 or 2 of four in half 0), so each size's sets nest in the next."""
    lines = pd.read_csv(sample, dtype=str, keep_default_na=False)
    customer = pd.to_numeric(lines["CustomerID"].where(lines["CustomerID"] != ""), errors="coerce")
    invoice = pd.to_numeric(lines["InvoiceNo"].str.extract(r"(\d+)")[0], errors="coerce")
    key = customer.fillna(invoice) // 1
    if split_seed is None:
        keep = (key % parts) == which
    else:
        drawn = {
            k: int(hashlib.md5(f"{split_seed}:{k:.0f}".encode()).hexdigest()[:8], 16) % parts
            for k in key.unique()
        }
        keep = key.map(drawn) == which
    lines[keep].to_csv(out, index=False, compression="gzip")
    return int(lines.loc[keep, "CustomerID"].replace("", None).nunique())


def truths(shop: Path) -> tuple[pd.Timestamp, dict[str, pd.Series]]:
    """The test cutoff, and per protocol what each customer with history bought in the 30 days
    after it (discovery: only items they had not bought before), of the catalogue as it was
    at the cutoff (an item first sold later could not be offered: the training run's test
    comparison leaves it out too, so the peers' figures and the CLI's share one truth)."""
    from features.interactions import with_dismissals
    from intake.tables import read_tables
    from storewise import columns as c
    from storewise.shop import ShopPaths
    from training.recommender.data import listed_at, prepare_tables, split_cutoffs

    paths = ShopPaths(shop)
    tables = with_dismissals(read_tables(paths), paths)  # as training reads them
    orders = tables[c.ORDERS]
    cutoff, end = split_cutoffs(orders, 30, 30)["test"]
    listed = set(listed_at(prepare_tables(tables), cutoff))
    sold = orders[~orders[c.RETURNED] & orders[c.CUSTOMER_ID].notna()]
    before = sold[sold[c.ORDERED_AT] < cutoff]
    window = sold[(sold[c.ORDERED_AT] >= cutoff) & (sold[c.ORDERED_AT] < end) & sold[c.ITEM_ID].isin(listed)]
    window = window[window[c.CUSTOMER_ID].isin(set(before[c.CUSTOMER_ID]))]
    everything = window.groupby(c.CUSTOMER_ID)[c.ITEM_ID].agg(set)
    bought = set(zip(before[c.CUSTOMER_ID], before[c.ITEM_ID], strict=True))
    new = pd.Series(
        {
            customer: {i for i in items if (customer, i) not in bought}
            for customer, items in everything.items()
        }
    )
    return cutoff, {"discovery": new, "all_purchases": everything}


def ndcg_at_10(answers: pd.DataFrame, truth: pd.Series) -> pd.Series:
    """Each customer's NDCG@10 (customers with nothing to find are left out)."""
    discounts = 1 / np.log2(np.arange(2, 12))
    top = answers.sort_values(["customer_id", "rank"]).groupby("customer_id")["item_id"].agg(list)
    values = {}
    for customer, items in truth.items():
        if items:
            ranked = top.get(str(customer), [])[:10]
            dcg = sum(discounts[i] for i, item in enumerate(ranked) if item in items)
            values[str(customer)] = dcg / discounts[: min(len(items), 10)].sum()
    return pd.Series(values, dtype=float)


def history_only(sample: Path, full_shop: Path, work: Path, full_run: str) -> dict[str, Any]:
    """Step 2 (module docstring)."""
    import mlflow

    from training.recommender.uncertainty import paired_interval

    cutoff, truth = truths(full_shop)
    lines = pd.read_csv(sample, dtype=str, keep_default_na=False)
    history = work / "history.csv.gz"
    lines[pd.to_datetime(lines["InvoiceDate"]) < cutoff.tz_localize(None)].to_csv(
        history, index=False, compression="gzip"
    )
    trained = train(history, work / "history_shop")
    ids = work / "customers.txt"
    ids.write_text("customer_id\n" + "\n".join(map(str, truth["all_purchases"].index)) + "\n")
    with tempfile.TemporaryDirectory() as directory:
        peers = pd.read_csv(
            mlflow.MlflowClient().download_artifacts(full_run, "reports/per_customer.csv", directory),
            dtype={"customer_id": str},
        )
    result: dict[str, Any] = {"cutoff": str(cutoff), "train_seconds": trained["wall_seconds"]}
    for protocol, flags in PROTOCOLS.items():
        out = work / f"recommendations_{protocol}.csv"
        storewise(
            "recommend",
            "--customers",
            str(ids),
            "--out",
            str(out),
            "--k",
            "10",
            "--shop-dir",
            str(work / "history_shop"),
            "--model-uri",
            f"models:/storewise-recommender/{trained['version']}",
            *flags,
        )
        cli = ndcg_at_10(
            pd.read_csv(out, dtype=str).assign(rank=lambda t: t["rank"].astype(int)), truth[protocol]
        )
        table = peers[peers["protocol"] == protocol].pivot(
            index="customer_id", columns="model", values="ndcg_at_10"
        )
        common = cli.index.intersection(table.index)
        table.loc[common].assign(cli=cli.loc[common]).rename_axis("customer_id").to_csv(
            work / f"per_customer_{protocol}.csv"
        )
        models: dict[str, dict[str, Any]] = {}
        for model in table.columns:
            interval = paired_interval(
                (cli.loc[common] - table.loc[common, model]).to_numpy(), samples=2000, confidence=0.9, seed=11
            )
            models[model] = {
                "ndcg_at_10": round(float(table.loc[common, model].mean()), 4),
                "cli_minus_model": [round(interval.mean, 4), round(interval.low, 4), round(interval.high, 4)],
            }
        result[protocol] = {
            "customers": len(cli),
            "customers_compared": len(common),
            "cli_ndcg_at_10": round(float(cli.loc[common].mean()), 4),
            "models": dict(sorted(models.items(), key=lambda pair: -float(pair[1]["ndcg_at_10"]))),
        }
    return result


def with_lightfm_settings(folder: Path, **lightfm: object) -> Path:
    """A copy of the settings folder with LightFM's `lightfm` settings changed (every CLI step
    of the run reads it through STOREWISE_CONFIG_DIR): its seed (the blend the tuning picks
    depends on LightFM's fit, so one seed's figures are one draw), or `screen` off (LightFM
    on every fold: a run's time where it stays in the blends)."""
    import shutil

    import yaml

    from storewise.config import CONFIG_DIR

    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(CONFIG_DIR, folder)
    settings = yaml.safe_load((folder / "recommender.yaml").read_text(encoding="utf-8"))
    settings["lightfm"].update(lightfm)
    (folder / "recommender.yaml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return folder


def chosen_run(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> Path:
    """The export (`args.sample`: the sample, a half or the wide stand-in, written into `work`)
    and LightFM's settings (a copy of the settings folder) the options ask for, recorded in
    `results`; returns where the results go."""
    out: Path = args.out or RESULTS
    lightfm: dict[str, object] = {}
    if args.lightfm_seed is not None:
        lightfm["seed"] = results["lightfm_seed"] = args.lightfm_seed
        out = args.out or RESULTS.with_name(f"retail_cli_lightfm_seed{args.lightfm_seed}.json")
    if args.half is not None:
        args.part, args.parts = args.half, 2
    if args.part is not None:
        name = f"half{args.part}" if args.parts == 2 else f"part{args.part}of{args.parts}"
        name += f"_split{args.split_seed}" if args.split_seed is not None else ""
        export = work / f"{name}.csv.gz"
        results["customers"] = part(args.sample, args.part, export, args.parts, args.split_seed)
        if args.parts != 2:
            results["part"] = [args.part, args.parts]
        if args.split_seed is not None:
            results["split_seed"] = args.split_seed
        args.sample, out = export, args.out or RESULTS.with_name(f"retail_cli_{name}.json")
    if args.wide:
        export = work / "wide.csv.gz"
        results["wide"] = wide(args.sample, export)
        args.sample, out = export, args.out or RESULTS.with_name("retail_cli_wide.json")
    if args.keep_lightfm:
        lightfm["screen"] = results["lightfm_screen"] = False
        out = args.out or out.with_name(f"{out.stem}_keep_lightfm.json")
    if lightfm:
        os.environ["STOREWISE_CONFIG_DIR"] = str(with_lightfm_settings(work / "config", **lightfm))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=0, help="also time the sample repeated this many times")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--half", type=int, choices=(0, 1), default=None, help="half of the customers")
    parser.add_argument("--part", type=int, default=None, help="part N (from 0) of --parts of the customers")
    parser.add_argument("--parts", type=int, default=2, help="with --part: how many parts (2: --half)")
    parser.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="with --half or --part: parts drawn by this seed, not by id",
    )
    parser.add_argument("--wide", action="store_true", help="the four-copy stand-in (`wide`) instead")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="another online-retail export")
    parser.add_argument("--out", type=Path, default=None, help="where the results go")
    parser.add_argument(
        "--lightfm-seed", type=int, default=None, help="LightFM's seed instead of config/recommender.yaml's"
    )
    parser.add_argument(
        "--keep-lightfm",
        action="store_true",
        help="LightFM on every fold, unscreened (lightfm.screen: false): the time where it stays",
    )
    args = parser.parse_args()
    if args.half is not None and args.part is not None:
        parser.error("--half N is --part N --parts 2: give one of them")
    if args.part is not None and not 0 <= args.part < args.parts:
        parser.error(f"--part {args.part} of --parts {args.parts}: give a part from 0 to {args.parts - 1}")
    if args.split_seed is not None and args.half is None and args.part is None:
        parser.error("--split-seed draws the parts of --half or --part: give one of them too")
    work = args.work or Path(tempfile.mkdtemp(prefix="storewise-retail-cli-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work.resolve()}/mlflow.db")
    results: dict[str, Any] = {}
    out = chosen_run(args, work, results)
    full = train(args.sample, work / "sample_shop")
    print(full.pop("printed"), flush=True)
    results["sample"] = full
    results["history_only"] = history_only(args.sample, work / "sample_shop", work, full["run"])
    print(json.dumps(results["history_only"], indent=1), flush=True)
    if args.copies > 1:
        export = work / f"sample_x{args.copies}.csv.gz"
        lines = repeated(args.sample, args.copies, export)
        timed = train(export, work / f"sample_x{args.copies}_shop")
        print(timed.pop("printed"), flush=True)
        results[f"sample_x{args.copies}"] = {"lines": lines, **timed}
    out.write_text(json.dumps({"export": str(args.sample), **results}, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in results.items() if k != "history_only"}, indent=1))


if __name__ == "__main__":
    main()
