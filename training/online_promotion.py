"""Promotion on an online experiment's evidence (`storewise promote --experiment`).

The offline gate (training/promotion.py) judges a version on past purchases; an
experiment judges it on what customers did. When the experiment's report decides
"promote", its challenger becomes champion, and the report's result (per-variant figures
with intervals, the difference and the rule that decided) is written on the version as
tags, so the registry says why it is champion. The experiment is stopped: its challenger
is now what everyone gets.
"""

from __future__ import annotations

import json

from mlflow.exceptions import MlflowException

from inference.experiments import read_experiment, write_experiment
from inference.registry import CHAMPION, champion_version, configure
from storewise.experiments import Experiment
from training.promotion import Decision, RegistryError

EVIDENCE_TAG = "promotion.evidence"
MAX_TAG = 5000


def current_experiment(name: str) -> Experiment:
    experiment = read_experiment(configure(), name)
    if experiment is None:
        raise RegistryError(f"'{name}' has had no experiment; start one with `storewise experiment start`")
    return experiment


def promote_on_evidence(
    experiment: Experiment, result: dict[str, object], version: str | None = None
) -> Decision:
    """Give the experiment's challenger the champion alias if its result says "promote";
    the result is recorded on the version either way it is promoted."""
    client = configure()
    name = experiment.model
    if version is not None and version != experiment.challenger:
        raise RegistryError(
            f"experiment {experiment.id} tested version {experiment.challenger}, not {version}: "
            "its result is evidence for that version only"
        )
    current = champion_version(client, name)
    decision = result.get("decision", {})
    action = decision.get("action") if isinstance(decision, dict) else None
    reason = decision.get("reason", "") if isinstance(decision, dict) else ""
    if current == experiment.challenger:
        return Decision(False, experiment.challenger, "is already the champion", current)
    if action != "promote":
        return Decision(
            False, experiment.challenger, f"experiment {experiment.id} says {action}: {reason}", current
        )
    text = json.dumps(result, separators=(",", ":"), default=str)
    try:
        client.set_registered_model_alias(name, CHAMPION, experiment.challenger)
        client.set_model_version_tag(
            name, experiment.challenger, "promotion", f"online experiment {experiment.id}: {reason}"
        )
        client.set_model_version_tag(name, experiment.challenger, "promotion.experiment", experiment.id)
        client.set_model_version_tag(name, experiment.challenger, EVIDENCE_TAG, text[:MAX_TAG])
    except MlflowException as error:
        raise RegistryError(f"cannot promote version {experiment.challenger}: {error.message}") from None
    if experiment.running:
        write_experiment(client, experiment.stopped())
    return Decision(True, experiment.challenger, f"online experiment {experiment.id}: {reason}", current)
