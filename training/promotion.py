"""The promotion gate (recommender and pricing): who may become `champion`.

The recommender's rule, in the order it is checked:

1. Against its own peers. A run that is clearly behind its best baseline or peer on the
   test weeks (the paired bootstrap interval of the difference lies below zero, under the
   primary protocol) is never promoted.
2. The first champion. With no champion, the candidate is promoted if it is not clearly
   behind its best peer: the service has nothing else to serve, and a model within noise of
   the best peer is the best there is. The reason says whether it was clearly ahead, ahead
   within noise, or behind within noise.
3. Against a champion evaluated on the same split and data (and the same test truth: the
   `test_catalogue` tag). The two runs scored the same
   test customers, so their per-customer NDCG@10 (each run's `reports/per_customer.csv`)
   are compared with a paired bootstrap: the candidate displaces the champion only if it
   is clearly better (the interval above zero). Otherwise the champion stays, and the
   reason gives the interval. (A champion logged before per-customer figures existed is
   compared on its mean alone.)
4. Against a champion trained on other data or another split. They cannot be compared on
   the same customers, and the champion is the older model: the candidate is promoted if it
   beats its best peer (point estimate), and the reason says the champion was not comparable.

The pricing gate keeps its simpler rule: it must beat its baselines, and a champion on the
same split and data must have a lower gate score. `force` skips the gate and is recorded as
a tag.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from inference.registry import CHAMPION, champion_version, configure
from storewise import columns as c
from storewise.errors import StorewiseError
from storewise.settings import load_recommender_settings
from training.recommender.uncertainty import Interval, paired_interval

PER_CUSTOMER = "reports/per_customer.csv"


@dataclass(frozen=True)
class GateSpec:
    """What a registered model is judged on."""

    metric: str  # run metric, higher is better
    baseline_tag: str  # run tag: "true" when the run beat its baselines
    paired: bool = False  # the runs log per-customer figures: compare them with intervals


GATES = {
    "storewise-recommender": GateSpec(
        metric="ndcg_at_10", baseline_tag="beats_baselines.{primary}", paired=True
    ),
    "storewise-pricing": GateSpec(metric="gate_score", baseline_tag="beats_baselines"),
}


@dataclass(frozen=True)
class Decision:
    promoted: bool
    version: str
    reason: str
    previous: str | None


class RegistryError(StorewiseError):
    pass


def _version(
    client: MlflowClient, name: str, version: str | None, data_hash: str | None = None
) -> tuple[str, str]:
    """`version`, or the newest; with `data_hash`, only a version trained on that data (the
    features' input hash, a tag of every registered version)."""
    try:
        if version is None:
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise RegistryError(f"no versions of '{name}' are registered; train one first")
            on_shop = [v for v in versions if data_hash is None or v.tags.get("data_hash") == data_hash]
            if not on_shop:
                raise RegistryError(
                    f"no version of '{name}' was trained on this shop's features (input hash "
                    f"{str(data_hash)[:12]}); train one on it first"
                )
            newest = max(on_shop, key=lambda v: int(v.version))
            return str(newest.version), str(newest.run_id)
        found = client.get_model_version(name, version)
    except MlflowException as error:
        raise RegistryError(f"'{name}' version {version} not found ({error.error_code})") from None
    trained_on = found.tags.get("data_hash", "")
    if data_hash is not None and trained_on != data_hash:
        raise RegistryError(
            f"'{name}' version {version} was trained on other data (input hash {trained_on[:12] or 'unknown'}) "
            f"than this shop's features ({data_hash[:12]})"
        )
    return str(found.version), str(found.run_id)


def peer_interval(candidate: Run, primary: str) -> Interval | None:
    """The run's NDCG@10 minus its best peer's, with the interval (recommender runs)."""
    metrics, best = candidate.data.metrics, candidate.data.tags.get(f"best_other.{primary}", "")
    name = best.split(" ")[0]
    keys = [f"{primary}.hybrid_minus.{name}.{part}" for part in ("mean", "low", "high")]
    if not name or not all(key in metrics for key in keys):
        return None
    return Interval(*(metrics[key] for key in keys))


def same_split(candidate: Run, champion: Run) -> bool:
    """The same data, the same split and the same test truth (`test_catalogue`: runs
    before it was logged counted items not yet launched at the test cutoff)."""
    tags = ("data_hash", "split", "test_catalogue")
    return all(champion.data.tags.get(tag) == candidate.data.tags.get(tag) for tag in tags)


def judge(
    gate: GateSpec,
    candidate: Run,
    value: float,
    champion: Run | None,
    current: str | None,
    versus_champion: Interval | None = None,
) -> tuple[bool, str]:
    """The gate's verdict on a candidate run, without side effects: (promote?, reason).
    `versus_champion` is the candidate's primary metric minus the champion's, per customer,
    when both were evaluated on the same customers."""
    primary = candidate.data.tags.get("primary_protocol", "")
    beats = candidate.data.tags.get(gate.baseline_tag.format(primary=primary)) == "true"
    best = candidate.data.tags.get(
        f"best_other.{primary}", candidate.data.tags.get("best_other", "a baseline")
    )
    peers = peer_interval(candidate, primary) if gate.paired else None
    stays = "" if current is None else f"; champion v{current} stays"
    if peers is not None and peers.clearly_below_zero:
        return False, f"is clearly behind its best peer ({gate.metric} {value:.4f} vs {best}){stays}"
    if champion is None:
        return _first_champion(gate, value, beats, best, peers)
    if not beats:
        return False, f"does not beat its baselines ({gate.metric} {value:.4f} vs {best}){stays}"
    if not same_split(candidate, champion):
        return True, (
            f"champion v{current} was evaluated on other data or another split, so it cannot be compared; "
            f"promoted because it beats its baselines ({gate.metric} {value:.4f} vs {best})"
        )
    return _against_champion(gate, value, champion, current, versus_champion)


def _first_champion(
    gate: GateSpec, value: float, beats: bool, best: str, peers: Interval | None
) -> tuple[bool, str]:
    if peers is None and not beats:
        return False, f"does not beat its baselines ({gate.metric} {value:.4f} vs {best})"
    if peers is None:
        return True, f"first champion: {gate.metric} {value:.4f}, beats its baselines"
    if peers.low == peers.high == 0 and value > 0:  # the same figure for every customer it was judged on
        return True, f"first champion: {gate.metric} {value:.4f}, level with its best peer ({best})"
    how = "clearly ahead of" if peers.clearly_above_zero else ("ahead of" if beats else "behind")
    noise = "" if peers.clearly_above_zero else " within noise"
    return True, f"first champion: {gate.metric} {value:.4f}, {how} its best peer{noise} ({best})"


def _against_champion(
    gate: GateSpec, value: float, champion: Run, current: str | None, versus: Interval | None
) -> tuple[bool, str]:
    champion_value = champion.data.metrics.get(gate.metric, float("-inf"))
    if versus is None:
        better = value > champion_value
        verb = "beats" if better else "does not beat"
        stays = "" if better else f"; champion v{current} stays"
        return better, (
            f"{gate.metric} {value:.4f} {verb} champion v{current} ({champion_value:.4f}) on the same split "
            f"and data{stays}"
        )
    if versus.clearly_above_zero:
        return True, (
            f"{gate.metric} {value:.4f} is clearly above champion v{current} ({champion_value:.4f}) on the same "
            f"split and customers: difference {versus.describe()}"
        )
    return False, (
        f"{gate.metric} {value:.4f} is not clearly better than champion v{current} ({champion_value:.4f}) on the "
        f"same split and customers (difference {versus.describe()}); champion v{current} stays"
    )


def versus_champion(client: MlflowClient, candidate: Run, champion: Run) -> Interval | None:
    """The candidate's per-customer NDCG@10 minus the champion's, under the primary protocol,
    with its paired bootstrap interval (None when either run has no per-customer figures)."""
    primary = candidate.data.tags.get("primary_protocol", "")
    frames = []
    for run in (candidate, champion):
        try:
            with tempfile.TemporaryDirectory() as directory:
                path = Path(client.download_artifacts(run.info.run_id, PER_CUSTOMER, directory))
                table = pd.read_csv(path, dtype={c.CUSTOMER_ID: str})
        except (MlflowException, OSError):
            return None
        frames.append(
            table[(table["protocol"] == primary) & (table["model"] == "hybrid")].set_index(c.CUSTOMER_ID)[
                "ndcg_at_10"
            ]
        )
    joined = pd.concat(frames, axis=1, keys=["candidate", "champion"], join="inner")
    if not len(joined):
        return None
    evaluation = load_recommender_settings().evaluation
    return paired_interval(
        (joined["candidate"] - joined["champion"]).to_numpy(),
        samples=evaluation.bootstrap_samples,
        confidence=evaluation.confidence,
        seed=evaluation.bootstrap_seed,
    )


def promote(
    name: str, version: str | None = None, *, force: bool = False, data_hash: str | None = None
) -> Decision:
    """Give `version` (default: the newest) the champion alias if the gate lets it, or
    unconditionally with `force` (recorded as a tag on the version). With `data_hash` (a
    shop's features), the default is the newest version trained on that data, and a
    `version` trained on other data is refused."""
    client = configure()
    if name not in GATES:
        raise RegistryError(f"unknown model '{name}'; use one of {', '.join(GATES)}")
    gate = GATES[name]
    candidate_version, run_id = _version(client, name, version, data_hash)
    candidate = client.get_run(run_id)
    current = champion_version(client, name)
    if current == candidate_version:
        return Decision(False, candidate_version, "is already the champion", current)
    value = candidate.data.metrics.get(gate.metric)
    if value is None:
        raise RegistryError(f"run {run_id} has no metric '{gate.metric}'")
    if force:
        accepted, reason = True, f"forced (--force): {gate.metric} {value:.4f}"
    else:
        champion = (
            client.get_run(str(client.get_model_version(name, current).run_id))
            if current is not None
            else None
        )
        paired = (
            versus_champion(client, candidate, champion)
            if gate.paired and champion is not None and same_split(candidate, champion)
            else None
        )
        accepted, reason = judge(gate, candidate, value, champion, current, paired)
    if accepted:
        client.set_registered_model_alias(name, CHAMPION, candidate_version)
        client.set_model_version_tag(name, candidate_version, "promotion", reason)
        if force:
            client.set_model_version_tag(name, candidate_version, "promoted_with_force", "true")
    else:
        client.set_model_version_tag(name, candidate_version, "not_promoted", reason)
    return Decision(accepted, candidate_version, reason, current)
