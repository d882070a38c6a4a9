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
from mlflow.entities import Run
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


def judge(
    gate: GateSpec, candidate: Run, value: float, champion: Run | None, current: str | None
) -> tuple[bool, str]:
    """The gate's verdict on a candidate run, without side effects: (promote?, reason)."""
    primary = candidate.data.tags.get("primary_protocol", "")
    if candidate.data.tags.get(gate.baseline_tag.format(primary=primary)) != "true":
        best = candidate.data.tags.get(
            f"best_other.{primary}", candidate.data.tags.get("best_other", "a baseline")
        )
        return False, f"does not beat its baselines ({gate.metric} {value:.4f} vs {best})"
    if champion is None:
        return True, f"first champion: {gate.metric} {value:.4f}, beats its baselines"
    same_data = champion.data.tags.get("data_hash") == candidate.data.tags.get("data_hash")
    same_split = champion.data.tags.get("split") == candidate.data.tags.get("split")
    if not (same_data and same_split):
        return True, (
            f"champion v{current} was evaluated on other data or another split, so it cannot be compared; "
            f"promoted because it beats its baselines ({gate.metric} {value:.4f})"
        )
    champion_value = champion.data.metrics.get(gate.metric, float("-inf"))
    verb = "beats" if value > champion_value else "does not beat"
    return value > champion_value, (
        f"{gate.metric} {value:.4f} {verb} champion v{current} ({champion_value:.4f}) on the same split and data"
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
        accepted, reason = judge(gate, candidate, value, champion, current)
    if accepted:
        client.set_registered_model_alias(name, CHAMPION, candidate_version)
        client.set_model_version_tag(name, candidate_version, "promotion", reason)
        if force:
            client.set_model_version_tag(name, candidate_version, "promoted_with_force", "true")
    return Decision(accepted, candidate_version, reason, current)
