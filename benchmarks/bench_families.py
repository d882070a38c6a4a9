"""Benchmark: the pricing simulator per true demand family (issue 15).

For each family, a small demo shop (4,000 customers, 16 products, 120 days, seed 3; with
`--size default`, the default demo shop: 60,000 customers, 100 products, 365 days) is
generated, its features built and its pricing model trained by the same code as
`storewise train pricing` (nothing registered); the simulator then runs 60 days x seeds
1, 2, 3 (config/pricing.yaml). Reported per family: the fixed price's and the
optimizer's share of the oracle's profit, and the optimizer minus the fixed price as a
share of the oracle's profit with a paired bootstrap 90% interval over items (categories
where items substitute), and the elasticity errors.

    uv run python -m benchmarks.bench_families [--size small|default] [--seed N] [--shape auto|constant|semi-log]
                                               [--shops DIR] [--reuse] [--at-estimate]

`--reuse` keeps shops already generated in DIR (their features are rebuilt);
`--at-estimate` prices at the elasticity's estimate (config/pricing.yaml with
`uncertainty.cautious_target: false`); `--seed` generates the shops with another seed;
`--shape` sets `elasticity.shape` (default: the repository's `auto`).
Results go to benchmarks/results/pricing_families.json (pricing_families_at_estimate.json;
`--size default` adds `_default` to the name).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "pricing_families.json"
# what differs from `storewise data generate`'s defaults (GeneratorSettings): "default" is
# the default demo shop (60,000 customers, 100 products, a year) with seed 3
SIZES: dict[str, dict[str, Any]] = {
    "small": {"customers": 4_000, "products": 16, "days": 120, "seed": 3},
    "default": {"seed": 3},
}
KEPT = (
    "simulation.fixed.share_of_oracle_mean",
    "simulation.fixed.share_of_oracle_sd",
    "simulation.optimizer.share_of_oracle_mean",
    "simulation.optimizer.share_of_oracle_sd",
    "simulation.optimizer.regret_mean",
    "simulation.oracle.profit_mean",
    "simulation.optimizer_minus_fixed_share",
    "simulation.optimizer_minus_fixed_share_low",
    "simulation.optimizer_minus_fixed_share_high",
    "simulation.optimizer_share_low",
    "simulation.optimizer_share_high",
    "simulation.clusters",
    "elasticity_mae",
    "elasticity_mae_all_items",
    "items_with_own_evidence",
    "elasticity_prior_spread",
)


def run_family(
    family: str, root: Path, reuse: bool, config_dir: Path, size: str = "small", seed: int | None = None
) -> dict[str, object]:
    from features.pipeline import build_features
    from intake.demo.generate import generate_shop
    from intake.demo.writer import write_generated_shop
    from storewise.shop import ShopPaths
    from training.pricing.train import train_pricing

    paths = ShopPaths(root / (f"{size}_{family}" if seed is None else f"{size}_seed{seed}_{family}"))
    if not (reuse and paths.ground_truth.exists()):
        write_generated_shop(paths, generate_shop(generator_settings(size, seed, demand_family=family)))
    build_features(paths)
    started = time.perf_counter()
    outcome = train_pricing(paths, config_dir=config_dir, register=False)
    metrics = {key: round(outcome.metrics[key], 4) for key in KEPT if key in outcome.metrics}
    findings = outcome.elasticities.attrs.get("findings", {})
    return {
        "family": family,
        "metrics": metrics,
        "findings": {term: finding.reason for term, finding in findings.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    from intake.demo.settings import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shops", type=Path, default=HERE.parent / "data" / "families")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--at-estimate", action="store_true")
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--shape", choices=["auto", "constant", "semi-log"], default="auto")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="storewise-config-") as scratch:
        config_dir = configuration(Path(scratch), args.at_estimate, args.shape)
        for family in args.families:
            runs.append(run_family(family, args.shops, args.reuse, config_dir, args.size, args.seed))
            report(family, runs[-1])
    command = "uv run python -m benchmarks.bench_families" + (" --at-estimate" if args.at_estimate else "")
    name = "pricing_families" + ("_at_estimate" if args.at_estimate else "")
    if args.size != "small":
        command += f" --size {args.size}"
        name += f"_{args.size}"
    if args.seed is not None:
        command += f" --seed {args.seed}"
        name += f"_seed{args.seed}"
    if args.shape != "auto":
        command += f" --shape {args.shape}"
        name += f"_{args.shape}"
    path = RESULTS.with_name(f"{name}.json")
    options = generator_settings(args.size, args.seed)
    shop = {name: getattr(options, name) for name in ("customers", "products", "days", "seed")}
    path.write_text(json.dumps({"command": command, "shop": shop, "runs": runs}, indent=1) + "\n")


def generator_settings(size: str, seed: int | None, **more: Any) -> Any:
    """The demo generator's settings for a size (its seed replaced by `seed` when given)."""
    from intake.demo.generate import GeneratorSettings

    return replace(GeneratorSettings(**more), **{**SIZES[size], **({} if seed is None else {"seed": seed})})


def configuration(scratch: Path, at_estimate: bool, shape: str = "auto") -> Path:
    """The repository's config, or a copy pricing at the estimate and/or with another
    `elasticity.shape`."""
    from storewise.config import CONFIG_DIR

    if not at_estimate and shape == "auto":
        return CONFIG_DIR
    copy = scratch / "config"
    shutil.copytree(CONFIG_DIR, copy)
    pricing = copy / "pricing.yaml"
    text = pricing.read_text(encoding="utf-8")
    for setting, value, wanted in (
        ("cautious_target", "true", "false" if at_estimate else "true"),
        ("shape", "auto", shape),
    ):
        if f"  {setting}: {value}\n" not in text:
            raise SystemExit(f"config/pricing.yaml has no `{setting}: {value}` to change")
        text = text.replace(f"  {setting}: {value}\n", f"  {setting}: {wanted}\n")
    pricing.write_text(text, encoding="utf-8")
    return copy


def report(family: str, run: dict[str, object]) -> None:
    metrics = run["metrics"]
    assert isinstance(metrics, dict)
    gain = "simulation.optimizer_minus_fixed_share"
    print(
        family,
        f"fixed {metrics['simulation.fixed.share_of_oracle_mean']:.1%}",
        f"optimizer {metrics['simulation.optimizer.share_of_oracle_mean']:.1%}",
        f"optimizer - fixed {metrics[gain]:+.1%} [{metrics[gain + '_low']:+.1%}, {metrics[gain + '_high']:+.1%}]",
        flush=True,
    )


if __name__ == "__main__":
    main()
