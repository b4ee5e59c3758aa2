"""`TrainResult`: what a training job produced (written by `job`, read by `report` and the demo)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from azaion_training.dataset.formation import FormedDataset, SplitCounts
from azaion_training.evaluate.run import ScoredFrame
from azaion_training.evaluate.scores import Scores
from azaion_training.train.gate import GateDecision


@dataclass(frozen=True)
class TrainResult:
    """What a training job produced.

    Attributes:
        run_dir: the Ultralytics run folder (``models/azaion-{date}``).
        data_yaml: the dataset trained on.
        counts: samples per split of that dataset.
        best / last: the run's checkpoints.
        model_pt / model_onnx: the current model (``models/azaion.pt`` / ``.onnx``).
        metrics: the candidate's scores as deployed, per split (``valid``, and ``test`` when the
            dataset has one).
        plots: the PNG files of the run folder (training curves, labels, validation plots).
        published: whether the model was published to the store.
        decision: the gate's decision (installed or not, and why).
        current_metrics: the previous current model's scores on the gate's split, if any.
        metrics_json: the run's ``metrics.json``.
        formed: the formation result when this job formed the dataset.
        candidate_onnx: the candidate as exported for scoring.
        frames: the candidate's frames of the gate's split (truth and detections), for plots.
        previous_run: the run folder before this one, if any.
    """

    run_dir: Path
    data_yaml: Path
    counts: Mapping[str, SplitCounts]
    best: Path
    last: Path
    model_pt: Path
    model_onnx: Path
    metrics: Mapping[str, Scores]
    plots: tuple[Path, ...]
    published: bool
    decision: GateDecision | None = None
    current_metrics: Scores | None = None
    metrics_json: Path | None = None
    formed: FormedDataset | None = field(default=None, repr=False)
    candidate_onnx: Path | None = None
    frames: tuple[ScoredFrame, ...] = field(default=(), repr=False)
    previous_run: Path | None = None

    @property
    def gate_split(self) -> str | None:
        """The split the gate compared on (test, else valid), if any was scored."""
        if self.decision is not None:
            return self.decision.split
        return next((s for s in ("test", "valid") if s in self.metrics), None)

    def summary(self) -> str:
        """A readable multi-line report: dataset, scores as deployed, the gate, files."""
        lines = [f"dataset {self.data_yaml.parent}"]
        lines += [
            f"  {name:<6} {c.samples:>8} samples  {c.sources:>7} sources"
            for name, c in self.counts.items()
        ]
        for split, scores in self.metrics.items():
            lines.append(f"{split} (as deployed): " + _line(scores))
            lines.append(f"  {'class':<28} {'objects':>7} {'AP50':>6} {'AP50-95':>7}")
            lines += [
                f"  {c.name:<28} {c.truths:>7} {_f(c.map50):>6} {_f(c.map50_95):>7}"
                for c in scores.classes
                if c.truths
            ]
        if self.decision is not None:
            lines.append(f"gate      {self.decision.reason}")
        lines += [
            f"run       {self.run_dir}",
            f"best      {self.best}",
            f"model     {self.model_pt}",
            f"onnx      {self.model_onnx}",
            *(f"plots     {folder}" for folder in sorted({p.parent for p in self.plots})),
            f"metrics   {self.metrics_json}",
            f"published {'yes' if self.published else 'no'}",
        ]
        return "\n".join(lines)


def _line(scores: Scores) -> str:
    small = scores.size("under_32")
    return (
        f"mAP50 {_f(scores.map50)}  mAP50-95 {_f(scores.map50_95)}  "
        f"up to 32 px {_f(small.map50_95)} ({small.truths} objects)  "
        f"P {_f(scores.precision)} R {_f(scores.recall)} at conf {scores.settings.conf:g}"
    )


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
