"""The promotion gate (recommender and pricing): who may become `champion`.

A version becomes `champion` only if (1) its run beat every baseline in its own test
comparison, and (2) there is no champion, or the champion was evaluated on the same split
and data hash and the candidate's primary metric is higher. A champion trained on other
data cannot be compared on the same split; the candidate is then promoted on (1) alone
and the reason is recorded. `force` skips the gate and is recorded as a tag.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from inference.registry import CHAMPION, champion_version, configure
from storewise.errors import StorewiseError


@dataclass(frozen=True)
class GateSpec:
    """What a registered model is judged on."""

    metric: str  # run metric, higher is better
    baseline_tag: str  # run tag: "true" when the run beat its baselines


GATES = {
    "storewise-recommender": GateSpec(metric="ndcg_at_10", baseline_tag="beats_baselines.{primary}"),
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


def _version(client: MlflowClient, name: str, version: str | None) -> tuple[str, str]:
    try:
        if version is None:
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise RegistryError(f"no versions of '{name}' are registered; train one first")
            newest = max(versions, key=lambda v: int(v.version))
            return str(newest.version), str(newest.run_id)
        found = client.get_model_version(name, version)
        return str(found.version), str(found.run_id)
    except MlflowException as error:
        raise RegistryError(f"'{name}' version {version} not found ({error.error_code})") from None


def promote(name: str, version: str | None = None, *, force: bool = False) -> Decision:
    client = configure()
    if name not in GATES:
        raise RegistryError(f"unknown model '{name}'; use one of {', '.join(GATES)}")
    gate = GATES[name]
    candidate_version, run_id = _version(client, name, version)
    candidate = client.get_run(run_id)
    current = champion_version(client, name)
    if current == candidate_version:
        return Decision(False, candidate_version, "is already the champion", current)
    value = candidate.data.metrics.get(gate.metric)
    if value is None:
        raise RegistryError(f"run {run_id} has no metric '{gate.metric}'")

    def accept(reason: str) -> Decision:
        client.set_registered_model_alias(name, CHAMPION, candidate_version)
        client.set_model_version_tag(name, candidate_version, "promotion", reason)
        if force:
            client.set_model_version_tag(name, candidate_version, "promoted_with_force", "true")
        return Decision(True, candidate_version, reason, current)

    if force:
        return accept(f"forced (--force): {gate.metric} {value:.4f}")
    primary = candidate.data.tags.get("primary_protocol", "")
    beats = candidate.data.tags.get(gate.baseline_tag.format(primary=primary))
    if beats != "true":
        best = candidate.data.tags.get(
            f"best_other.{primary}", candidate.data.tags.get("best_other", "a baseline")
        )
        return Decision(
            False,
            candidate_version,
            f"does not beat its baselines ({gate.metric} {value:.4f} vs {best})",
            current,
        )
    if current is None:
        return accept(f"first champion: {gate.metric} {value:.4f}, beats its baselines")
    champion_run = client.get_run(str(client.get_model_version(name, current).run_id))
    same_data = champion_run.data.tags.get("data_hash") == candidate.data.tags.get("data_hash")
    same_split = champion_run.data.tags.get("split") == candidate.data.tags.get("split")
    champion_value = champion_run.data.metrics.get(gate.metric, float("-inf"))
    if same_data and same_split:
        if value > champion_value:
            return accept(
                f"{gate.metric} {value:.4f} beats champion v{current} ({champion_value:.4f}) on the same split and data"
            )
        return Decision(
            False,
            candidate_version,
            f"{gate.metric} {value:.4f} does not beat champion v{current} ({champion_value:.4f}) on the same split and data",
            current,
        )
    return accept(
        f"champion v{current} was evaluated on other data or another split, so it cannot be compared; "
        f"promoted because it beats its baselines ({gate.metric} {value:.4f})"
    )
