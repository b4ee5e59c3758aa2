"""The gate: a trained candidate replaces the current model only if it is not worse (SPEC 7).

Both models are scored on the new dataset's test split (valid when it has no test split) in the
same run. The candidate is installed, exported and published when its mAP50-95 is at most
``training.gate_tolerance`` below the current model's, when there is no current model, or when
the operator forces it; otherwise the current model stays and the reason is given. The scores,
the decision and the dataset's identity (its manifest) go to the run's ``metrics.json`` and to
the store's record of the published model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from azaion_training.dataset.formation import MANIFEST, read_manifest
from azaion_training.fs import atomic_write_text
from azaion_training.train.evaluate import SplitMetrics

METRICS_FILE = "metrics.json"
"""The run folder's record of the scores and the gate's decision."""


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate replaces the current model, and why.

    Attributes:
        install: the candidate becomes ``models/azaion.pt`` (and is exported and published).
        reason: one line for the operator.
        split: the split both were scored on.
        candidate: the candidate's mAP50-95 there.
        current: the current model's, or ``None`` when there is none.
        tolerance: how much worse the candidate may be.
        forced: installed only because the operator forced it.
    """

    install: bool
    reason: str
    split: str
    candidate: float
    current: float | None
    tolerance: float
    forced: bool = False


def decide(
    *, split: str, candidate: float, current: float | None, tolerance: float, force: bool
) -> GateDecision:
    """The gate's decision on mAP50-95 scores of one split."""
    scores = f"candidate mAP50-95 {candidate:.4f}"
    if current is None:
        reason = f"{scores}; no current model to compare"
        return GateDecision(True, reason, split, candidate, None, tolerance)
    scores += f" vs current {current:.4f} on {split} (tolerance {tolerance:g})"
    if candidate >= current - tolerance:
        return GateDecision(
            True, f"{scores}: not worse, installed", split, candidate, current, tolerance
        )
    if force:
        reason = f"{scores}: worse, installed because --force"
        return GateDecision(True, reason, split, candidate, current, tolerance, forced=True)
    reason = f"{scores}: worse, current model kept (--force installs it anyway)"
    return GateDecision(False, reason, split, candidate, current, tolerance)


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
    candidate: Mapping[str, SplitMetrics],
    current: SplitMetrics | None,
    dataset: Mapping[str, Any],
) -> Path:
    """Writes ``metrics.json`` into the run folder; returns its path."""
    record = {
        "gate": asdict(decision),
        "candidate": {split: _scores(m) for split, m in candidate.items()},
        "current": None if current is None else _scores(current),
        "dataset": dict(dataset),
    }
    path = run_dir / METRICS_FILE
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def store_metadata(decision: GateDecision, dataset: Mapping[str, Any]) -> dict[str, Any]:
    """What the store records beside a published model: the scores and the dataset."""
    return {
        "map50_95": decision.candidate,
        "previous_map50_95": decision.current,
        "scored_on": decision.split,
        "forced": decision.forced,
        "dataset": Path(str(dataset["dataset"])).name,
        "manifest_sha256": dataset["manifest_sha256"],
    }


def _scores(metrics: SplitMetrics) -> dict[str, Any]:
    return {
        "map50": metrics.map50,
        "map50_95": metrics.map50_95,
        "classes": [asdict(c) for c in metrics.classes],
    }
