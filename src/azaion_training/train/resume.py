"""Resuming a run: the latest run folder, and a ``last.pt`` that Ultralytics will continue.

`prepare_resume` continues the latest run from its ``last.pt``. Ultralytics takes the epoch
count from the checkpoint and ignores a new one, so to raise it the checkpoint's
``train_args["epochs"]`` is rewritten first. A finished run's ``last.pt`` has its optimizer
stripped and cannot resume; with ``save_period=1`` its newest ``epoch{N}.pt`` still can.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azaion_training.config import Settings
from azaion_training.errors import DatasetError, TrainingError
from azaion_training.fs import DataTree, atomic_writer

logger = logging.getLogger(__name__)

_EPOCH_CHECKPOINT = re.compile(r"^epoch(\d+)\.pt$")


def latest_run(tree: DataTree) -> Path:
    """The run folder under ``models/`` whose ``weights/last.pt`` was written last.

    Raises:
        TrainingError: no run has a ``last.pt``.
    """
    candidates = [
        path
        for path in tree.models.glob("azaion-*")
        if path.is_dir() and (path / "weights" / "last.pt").is_file()
    ]
    if not candidates:
        raise TrainingError(f"no run with weights/last.pt under {tree.models} to resume")
    return max(candidates, key=lambda p: (p / "weights" / "last.pt").stat().st_mtime)


@dataclass(frozen=True)
class ResumePoint:
    """Where a run continues: its ``last.pt``, the epochs done and planned, its dataset."""

    last: Path
    done: int
    epochs: int
    data: str | None


def prepare_resume(run_dir: Path, *, epochs: int | None = None) -> ResumePoint:
    """Makes ``run_dir/weights/last.pt`` resumable, up to ``epochs`` in total if given.

    An interrupted run's ``last.pt`` resumes as it is. A finished run's ``last.pt`` has lost its
    optimizer, so its newest ``epoch{N}.pt`` (``save_period``) is taken instead. When ``epochs``
    differs from the checkpoint's own count, ``train_args["epochs"]`` is rewritten (Ultralytics
    takes the epoch count from there and ignores a new one on resume). The result is written
    atomically to ``last.pt``.

    Returns:
        The resume point (``last.pt`` and the epochs done / to do).

    Raises:
        TrainingError: nothing resumable, or ``epochs`` is not above the epochs already done.
    """
    import torch

    weights = run_dir / "weights"
    last = weights / "last.pt"
    checkpoint = _load_checkpoint(last)
    source = last
    if checkpoint.get("epoch", -1) < 0 or checkpoint.get("optimizer") is None:
        source = _newest_epoch_checkpoint(weights)
        checkpoint = _load_checkpoint(source)
    done = int(checkpoint["epoch"]) + 1
    planned = int(checkpoint["train_args"]["epochs"])
    target = planned if epochs is None else epochs
    if target <= done:
        raise TrainingError(
            f"{run_dir.name} has trained {done} of {planned} epochs; "
            f"pass a higher epoch count (--epochs N, N > {done}) to continue it"
        )
    if source != last or target != planned:
        checkpoint["train_args"]["epochs"] = target
        with atomic_writer(last) as handle:
            torch.save(checkpoint, handle)
    logger.info("resuming %s after epoch %d of %d (from %s)", run_dir, done, target, source.name)
    data = checkpoint["train_args"].get("data")
    return ResumePoint(last=last, done=done, epochs=target, data=data)


def resume_arguments(settings: Settings, *, last: Path, data_yaml: Path) -> dict[str, Any]:
    """The keyword arguments of ``YOLO.train`` that resume from ``last``."""
    arguments: dict[str, Any] = {
        "resume": str(last),
        "data": str(data_yaml),
        "workers": settings.training.workers,
        "save_dir": str(last.parent.parent),
    }
    if settings.training.device is not None:
        arguments["device"] = settings.training.device
    return arguments


def _load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise TrainingError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(checkpoint, dict) or "train_args" not in checkpoint:
        raise TrainingError(f"{path} is not an Ultralytics training checkpoint")
    return checkpoint


def _newest_epoch_checkpoint(weights: Path) -> Path:
    numbered = [
        (int(match[1]), path)
        for path in weights.glob("epoch*.pt")
        if (match := _EPOCH_CHECKPOINT.match(path.name))
    ]
    if not numbered:
        raise TrainingError(
            f"{weights.parent.name} finished and kept no epoch checkpoint (save_period); "
            "start a new run instead"
        )
    return max(numbered)[1]


def trained_on(point: ResumePoint) -> Path:
    """The dataset a resume point was trained on."""
    if not point.data:
        raise DatasetError(f"{point.last} does not name its dataset; pass --dataset")
    return Path(point.data)
