"""The gate: a trained candidate replaces the current model only if it is not worse (SPEC 7).

Both models are scored as they are deployed (`azaion_training.evaluate`: the exported ONNX,
``azaion-infer``'s path, full frames, tiles as ``infer.tiles`` says) on the new dataset's test
split (valid when it has no test split), in the same run. The candidate is installed, exported
and published when, on every condition, its score is at most ``training.gate_tolerance`` below
the current model's, when there is no current model, or when the operator forces it; otherwise
the current model stays and the reason is given. The conditions:

1. ``evaluate.gate_metric`` (mAP50-95 by default) over all objects;
2. mAP50-95 of the objects of size bucket ``evaluate.gate_bucket`` (up to 32 px by default),
   when the split holds at least ``evaluate.gate_min_objects`` of them.

The scores of both, the decision, the evaluator's settings and the dataset's identity (its
manifest) go to the run's ``metrics.json`` and to the store's record of the published model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from azaion_training.config import EvaluateSettings
from azaion_training.dataset.formation import MANIFEST, read_manifest
from azaion_training.errors import ConfigError, TrainingError
from azaion_training.evaluate.scores import Scores
from azaion_training.evaluate.sizes import bucket
from azaion_training.fs import atomic_write_text

METRICS_FILE = "metrics.json"
"""The run folder's record of the scores and the gate's decision."""

METRIC_NAMES = {"map50_95": "mAP50-95", "map50": "mAP50"}
"""Score keys -> their names for people."""


@dataclass(frozen=True)
class Condition:
    """One comparison of the gate.

    Attributes:
        metric: the score (`Scores.metric` key, e.g. ``map50_95``, ``under_32.map50_95``).
        label: the score for people.
        candidate, current: both models' values (``current`` ``None``: no current model).
        passed: the candidate is not worse by more than the tolerance.
    """

    metric: str
    label: str
    candidate: float | None
    current: float | None
    passed: bool


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate replaces the current model, and why.

    Attributes:
        install: the candidate becomes ``models/azaion.pt`` (and is exported and published).
        reason: one line for the operator.
        split: the split both were scored on.
        candidate: the candidate's value of the first condition's score (``metric``).
        current: the current model's, or ``None`` when there is none.
        tolerance: how much worse the candidate may be, on each condition.
        forced: installed only because the operator forced it.
        metric: the first condition's score.
        conditions: every comparison made.
    """

    install: bool
    reason: str
    split: str
    candidate: float
    current: float | None
    tolerance: float
    forced: bool = False
    metric: str = "map50_95"
    conditions: tuple[Condition, ...] = field(default_factory=tuple)


def decide(
    *,
    split: str,
    candidate: Scores,
    current: Scores | None,
    tolerance: float,
    force: bool,
    settings: EvaluateSettings | None = None,
) -> GateDecision:
    """The gate's decision on the scores of both models on one split.

    Raises:
        TrainingError: the split has no labelled objects, so nothing can be compared.
        ConfigError: ``evaluate.gate_bucket`` names no size bucket.
    """
    settings = settings or EvaluateSettings()
    metrics = [(settings.gate_metric, METRIC_NAMES[settings.gate_metric])]
    if settings.gate_bucket:
        try:
            size = bucket(settings.gate_bucket)
        except KeyError as exc:
            raise ConfigError(f"evaluate.gate_bucket: {exc.args[0]}") from exc
        if candidate.size(size.key).truths >= settings.gate_min_objects:
            metrics.append((f"{size.key}.map50_95", f"mAP50-95 of objects {size.label}"))
    first = candidate.metric(metrics[0][0])
    if first is None:
        raise TrainingError(f"the {split} split has no labelled objects: the gate cannot compare")
    conditions = tuple(
        _condition(key, label, candidate, current, tolerance) for key, label in metrics
    )
    worse = [c for c in conditions if not c.passed]
    scores = "; ".join(_describe(c) for c in conditions)
    base = dict(
        split=split,
        candidate=first,
        current=conditions[0].current,
        tolerance=tolerance,
        metric=metrics[0][0],
        conditions=conditions,
    )
    if current is None:
        return GateDecision(True, f"{scores}; no current model to compare", **base)
    scores += f" on {split} (tolerance {tolerance:g})"
    if not worse:
        return GateDecision(True, f"{scores}: not worse, installed", **base)
    which = ", ".join(c.label for c in worse)
    if force:
        reason = f"{scores}: worse ({which}), installed because --force"
        return GateDecision(True, reason, forced=True, **base)
    reason = f"{scores}: worse ({which}), current model kept (--force installs it anyway)"
    return GateDecision(False, reason, **base)


def _condition(
    key: str, label: str, candidate: Scores, current: Scores | None, tolerance: float
) -> Condition:
    mine = candidate.metric(key)
    theirs = current.metric(key) if current is not None else None
    passed = theirs is None or (mine is not None and mine >= theirs - tolerance)
    return Condition(key, label, mine, theirs, passed)


def _describe(condition: Condition) -> str:
    text = f"candidate {condition.label} {_f(condition.candidate)}"
    return text if condition.current is None else f"{text} vs current {_f(condition.current)}"


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def dataset_identity(data_yaml: Path) -> dict[str, Any]:
    """What identifies a dataset: its folder, manifest digest and split ledger generation."""
    dataset = data_yaml.parent
    manifest = read_manifest(dataset)
    try:
        digest: str | None = hashlib.sha256((dataset / MANIFEST).read_bytes()).hexdigest()
    except FileNotFoundError:
        digest = None
    return {
        "dataset": str(dataset),
        "manifest_sha256": digest,
        "ledger_generation": manifest.get("ledger_generation"),
        "members_sha256": manifest.get("members_sha256"),
    }


def write_metrics(
    run_dir: Path,
    *,
    decision: GateDecision,
    candidate: Mapping[str, Scores],
    current: Scores | None,
    dataset: Mapping[str, Any],
) -> Path:
    """Writes ``metrics.json`` into the run folder; returns its path.

    It holds the decision, the candidate's scores per split and the current model's on the
    gate's split, each with the evaluator's settings (`Scores.to_dict`), and the dataset.
    """
    record = {
        "gate": asdict(decision),
        "candidate": {split: scores.to_dict() for split, scores in candidate.items()},
        "current": None if current is None else current.to_dict(),
        "dataset": dict(dataset),
    }
    path = run_dir / METRICS_FILE
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's ``metrics.json``, or ``None`` when it has none or it is unreadable."""
    try:
        record = json.loads((run_dir / METRICS_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def store_metadata(
    decision: GateDecision,
    dataset: Mapping[str, Any],
    candidate: Scores,
    current: Scores | None,
) -> dict[str, Any]:
    """What the store records beside a published model: its scores and the previous model's,
    the gate's conditions, how the scores were made (the evaluator's settings), the dataset."""
    return {
        "map50_95": candidate.map50_95,
        "map50": candidate.map50,
        "previous_map50_95": None if current is None else current.map50_95,
        "sizes_map50_95": {row.key: row.map50_95 for row in candidate.sizes},
        "gate_metric": decision.metric,
        "conditions": [asdict(c) for c in decision.conditions],
        "scored_on": decision.split,
        "forced": decision.forced,
        "evaluator": asdict(candidate.settings),
        "dataset": Path(str(dataset["dataset"])).name,
        "manifest_sha256": dataset["manifest_sha256"],
    }
