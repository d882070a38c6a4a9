"""Benchmark: the pricing simulator per true demand family (issue 15).

For each family, a small demo shop (4,000 customers, 16 products, 120 days, seed 3) is
generated, its features built and its pricing model trained by the same code as
`storewise train pricing` (nothing registered); the simulator then runs 60 days x seeds
1, 2, 3 (config/pricing.yaml). Reported per family: the fixed price's and the
optimizer's share of the oracle's profit, and the optimizer minus the fixed price as a
share of the oracle's profit with a paired bootstrap 90% interval over items (categories
where items substitute), and the elasticity errors.

    uv run python -m benchmarks.bench_families [--shops DIR] [--reuse]

`--reuse` keeps shops already generated in DIR (their features are rebuilt). Results go to
benchmarks/results/pricing_families.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "pricing_families.json"
SHOP = {"customers": 4_000, "products": 16, "days": 120, "seed": 3}
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
)


def run_family(family: str, root: Path, reuse: bool) -> dict[str, object]:
    from features.pipeline import build_features
    from intake.demo.generate import GeneratorSettings, generate_shop
    from intake.demo.writer import write_generated_shop
    from storewise.shop import ShopPaths
    from training.pricing.train import train_pricing

    paths = ShopPaths(root / f"small_{family}")
    if not (reuse and paths.ground_truth.exists()):
        write_generated_shop(paths, generate_shop(GeneratorSettings(**SHOP, demand_family=family)))
    build_features(paths)
    started = time.perf_counter()
    outcome = train_pricing(paths, register=False)
    metrics = {key: round(outcome.metrics[key], 4) for key in KEPT if key in outcome.metrics}
    findings = outcome.elasticities.attrs.get("findings", {})
    return {
        "family": family,
        "metrics": metrics,
        "findings": {term: finding.reason for term, finding in findings.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    from intake.demo.dynamics import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shops", type=Path, default=HERE.parent / "data" / "families")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    args = parser.parse_args()
    runs = []
    for family in args.families:
        runs.append(run_family(family, args.shops, args.reuse))
        metrics = runs[-1]["metrics"]
        assert isinstance(metrics, dict)
        print(
            family,
            f"fixed {metrics['simulation.fixed.share_of_oracle_mean']:.1%}",
            f"optimizer {metrics['simulation.optimizer.share_of_oracle_mean']:.1%}",
            f"optimizer - fixed {metrics['simulation.optimizer_minus_fixed_share']:+.1%}"
            f" [{metrics['simulation.optimizer_minus_fixed_share_low']:+.1%},"
            f" {metrics['simulation.optimizer_minus_fixed_share_high']:+.1%}]",
            flush=True,
        )
    command = "uv run python -m benchmarks.bench_families"
    RESULTS.write_text(json.dumps({"command": command, "shop": SHOP, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
