"""What a recommender training run logs, worked out where it trained: params, tags, metrics,
the verdicts against the best peer, the reports' tables and the bundle to register.

Plain data, so the run can be written to MLflow in another process (`mlflow_run.py`, run by
`training/tracking_process.py`), which imports MLflow while the model trains. Nothing here
imports MLflow: the training process never does.

Metric names: `<protocol>.<model>.<metric>_at_<k>` for the test comparison (the hybrid,
LightFM alone, baselines and peers side by side), `<protocol>.hybrid_minus.<model>.{mean,low,high}`
for the hybrid's NDCG@10 minus each model's with its paired bootstrap interval,
`ndcg_at_10` for the hybrid under the primary protocol (what the promotion gate reads),
`validation.lightfm.ndcg_at_10` per epoch (the learning curve) and
`validation.<protocol>.hybrid_minus.<component>.*` for the blend against each of its
components on the validation folds. Tags carry the data hash and split the gate compares
on, and the verdict against the best peer; `reports/per_customer.csv` holds each test
customer's NDCG@10 per model, so the gate can compare two runs customer by customer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from storewise import columns as c
from training.recommender.outcome import PRIMARY_METRIC, flat_params

if TYPE_CHECKING:  # the writing process unpickles a record without the training code
    from training.recommender.outcome import TrainOutcome
    from training.recommender.trainer import Trainer
    from training.recommender.validation import LightFmChoice

# how the test weeks' catalogue was chosen (README, "The recommender", step 4)
TEST_CATALOGUE = "as of the test cutoff"


@dataclass(frozen=True)
class RunRecord:
    """One training run as MLflow gets it (`mlflow_run.log_run`)."""

    run_name: str
    params: dict[str, Any]
    tags: dict[str, str]
    # per protocol, whether the hybrid beats its best peer and by how much: on the run and on
    # the registered version, for the promotion gate
    verdicts: dict[str, str]
    metrics: dict[str, float]
    learning_curve: list[tuple[int, float]]
    best_epochs: int
    search_results: list[dict[str, Any]]
    comparison: pd.DataFrame
    intervals: pd.DataFrame
    per_customer: pd.DataFrame
    bundle: Path
    example_customer: str
    data_hash: str
    primary_protocol: str


class LoggedRun(NamedTuple):
    """Where `mlflow_run.log_run` wrote the run: its id, the registered version, the store."""

    run_id: str
    version: str
    tracking_uri: str


def run_record(
    outcome: TrainOutcome,
    *,
    trainer: Trainer,
    choice: LightFmChoice,
    folds: list[tuple[pd.Timestamp, pd.Timestamp]],
    test_window: tuple[pd.Timestamp, pd.Timestamp],
) -> RunRecord:
    assert outcome.bundle is not None
    settings = trainer.shop.settings()
    return RunRecord(
        run_name=f"hybrid {pd.Timestamp.now():%Y-%m-%d %H:%M}",
        params=run_params(outcome, trainer, choice),
        tags={
            "data_hash": trainer.data_hash,
            "split": f"test {test_window[0]:%Y-%m-%d}..{test_window[1]:%Y-%m-%d}",
            "validation_folds": "; ".join(f"{a:%Y-%m-%d}..{b:%Y-%m-%d}" for a, b in folds),
            "primary_protocol": outcome.primary_protocol,
            # the test truth's definition: a champion logged without it counted items not
            # yet launched at the test cutoff, so it is not compared customer by customer
            "test_catalogue": TEST_CATALOGUE,
            "shop": settings.name,
            "shop_source": settings.source,
        },
        verdicts=verdict_tags(outcome),
        metrics=run_metrics(outcome),
        learning_curve=outcome.learning_curve,
        best_epochs=choice.epochs,
        search_results=choice.search_results,
        comparison=outcome.comparison,
        intervals=outcome.intervals,
        per_customer=outcome.per_customer,
        bundle=outcome.bundle,
        example_customer=str(trainer.customer_features[c.CUSTOMER_ID].iloc[0]),
        data_hash=trainer.data_hash,
        primary_protocol=outcome.primary_protocol,
    )


def run_params(outcome: TrainOutcome, trainer: Trainer, choice: LightFmChoice) -> dict[str, Any]:
    params = flat_params(trainer.settings, trainer.rules)
    params.update(
        {
            "lightfm.epochs_chosen": choice.epochs,
            "lightfm.search_overrides": json.dumps(choice.overrides),
            "lightfm.blended": choice.blended,
            "test_weeks.unlaunched_items": outcome.unlaunched_items,
        }
    )
    # why LightFM was (not) fitted on the other folds: its gain on the latest fold
    params.update({f"lightfm.screen.{protocol}": gain.describe() for protocol, gain in choice.screen.items()})
    if choice.confirmation is not None:  # asked once the screen kept it: the latest two folds
        params.update(
            {
                f"lightfm.confirmation.{protocol}": gain.describe()
                for protocol, gain in choice.confirmation.items()
            }
            or {"lightfm.confirmation": "no blend keeps it"}
        )
    for protocol, weights in outcome.blends.items():
        params.update({f"blend.{protocol}.{name}": weight for name, weight in weights.items()})
    # which protocols the learned reranker answers, and why (its held-out gain)
    params.update(
        {
            f"rerank.{protocol}.chosen": rerank.describe()
            + ("; replaced on the test weeks (fallback)" if protocol in outcome.fallbacks else "")
            for protocol, rerank in outcome.rerank.items()
        }
    )
    # a protocol the test weeks gave to one component alone (the blend params above are its)
    params.update(
        {f"fallback.{protocol}": fallback.describe() for protocol, fallback in outcome.fallbacks.items()}
    )
    return params


def run_metrics(outcome: TrainOutcome) -> dict[str, float]:
    metrics = {}
    for row in outcome.comparison.itertuples():
        suffix = f"{row.metric}_at_{int(row.k)}" if pd.notna(row.k) else str(row.metric)
        metrics[f"{row.protocol}.{row.model}.{suffix}"] = float(row.value)
    for row in outcome.intervals.itertuples():
        for part in ("mean", "low", "high"):
            metrics[f"{row.protocol}.hybrid_minus.{row.model}.{part}"] = float(getattr(row, part))
    for protocol, tuned in outcome.validation.items():
        metrics[f"validation.hybrid.{protocol}.{PRIMARY_METRIC}"] = tuned.value
        metrics[f"validation.hybrid.{protocol}.shrinkage"] = tuned.shrinkage
        for name, interval in tuned.versus_components.items():
            for part in ("mean", "low", "high"):
                metrics[f"validation.{protocol}.hybrid_minus.{name}.{part}"] = getattr(interval, part)
    metrics.update(answer_metrics(outcome))
    metrics[PRIMARY_METRIC] = outcome.value("hybrid")
    metrics.update(
        {f"seconds.{name.replace(' ', '_')}": seconds for name, seconds in outcome.seconds.items()}
    )
    return metrics


def answer_metrics(outcome: TrainOutcome) -> dict[str, float]:
    """What decided each protocol's answer: the reranker's held-out gain over the blend, and
    where the test weeks gave a protocol to one component alone, the tuned hybrid's figures
    there (the run's hybrid metrics are the component's)."""
    metrics = {}
    for protocol, rerank in outcome.rerank.items():
        metrics[f"validation.{protocol}.reranker_adopted"] = float(rerank.adopted)
        if rerank.gain is not None:
            for part in ("mean", "low", "high"):
                metrics[f"validation.{protocol}.reranker_minus_blend.{part}"] = getattr(rerank.gain, part)
    for protocol, fallback in outcome.fallbacks.items():
        metrics[f"{protocol}.tuned_hybrid.ndcg_at_10"] = fallback.tuned_ndcg
        for part in ("mean", "low", "high"):
            metrics[f"{protocol}.tuned_hybrid_minus.{fallback.peer}.{part}"] = getattr(
                fallback.tuned_minus_peer, part
            )
    return metrics


def verdict_tags(outcome: TrainOutcome) -> dict[str, str]:
    """Per protocol: does the hybrid beat its best peer (point estimate), is it clearly
    better (the interval above zero), and who that peer is, with the interval."""
    verdicts = {}
    for protocol in ("discovery", "all_purchases", "business_rules"):
        best_name, best_other = outcome.best_other(protocol)
        interval = outcome.interval(best_name, protocol)
        verdicts[f"beats_baselines.{protocol}"] = str(outcome.value("hybrid", protocol) > best_other).lower()
        verdicts[f"clearly_beats_baselines.{protocol}"] = str(interval.clearly_above_zero).lower()
        verdicts[f"best_other.{protocol}"] = (
            f"{best_name} {best_other:.4f}; hybrid minus it {interval.describe()} "
            f"({outcome.validation[protocol].users if protocol in outcome.validation else 0} validation rows)"
        )
    for protocol, tuned in outcome.validation.items():
        if tuned.dropped:
            verdicts[f"blend.{protocol}.dropped"] = ", ".join(tuned.dropped)
    return verdicts
