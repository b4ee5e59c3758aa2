"""Scoring a model on a dataset split with Ultralytics' validator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from azaion_training._ultralytics import provide_plot_fonts, ultralytics_errors
from azaion_training.config import Settings
from azaion_training.errors import DatasetError, TrainingError

_SPLIT_KEYS = {"valid": "val", "test": "test"}


@dataclass(frozen=True)
class ClassMetrics:
    """Scores of one class on one split."""

    class_id: int
    name: str
    instances: int
    map50: float
    map50_95: float


@dataclass(frozen=True)
class SplitMetrics:
    """Scores of a model on one dataset split.

    Attributes:
        split: ``valid`` or ``test``.
        map50: mean AP at IoU 0.5 over the classes present.
        map50_95: mean AP over IoU 0.5..0.95.
        classes: one row per class present in the split.
        plots_dir: where Ultralytics' validator left its plots (PR curves, confusion matrix).
    """

    split: str
    map50: float
    map50_95: float
    classes: tuple[ClassMetrics, ...]
    plots_dir: Path


def evaluate(
    weights: Path, data_yaml: Path, *, split: str, settings: Settings, out: Path
) -> SplitMetrics:
    """Scores ``weights`` on one split with Ultralytics' validator, at its training image size.

    Args:
        split: ``valid`` or ``test``.
        out: the run folder; the validator's plots go to ``out/{split}``.

    Raises:
        TrainingError: the validator failed.
    """
    from ultralytics import YOLO

    provide_plot_fonts()
    with ultralytics_errors(TrainingError, f"validation of {weights} on {split} failed"):
        results = YOLO(str(weights)).val(
            data=str(data_yaml),
            split=_SPLIT_KEYS[split],
            batch=settings.training.batch,
            device=first_device(settings.training.device),
            plots=settings.training.plots,
            project=str(out),
            name=split,
            exist_ok=True,
            verbose=False,
        )
    return _split_metrics(results, split=split, plots_dir=out / split)


def evaluable_splits(data_yaml: Path) -> list[str]:
    """The scored splits a ``data.yaml`` has: ``valid``, and ``test`` when it names one."""
    try:
        content = yaml.safe_load(data_yaml.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(f"cannot read {data_yaml}: {exc}") from exc
    return [split for split, key in _SPLIT_KEYS.items() if content.get(key)]


def _split_metrics(results: Any, *, split: str, plots_dir: Path) -> SplitMetrics:
    names = results.names
    counts = results.nt_per_class
    classes = []
    for index, class_id in enumerate(results.ap_class_index):
        _, _, ap50, ap = results.class_result(index)
        classes.append(
            ClassMetrics(
                class_id=int(class_id),
                name=str(names[int(class_id)]),
                instances=int(counts[int(class_id)]) if counts is not None else 0,
                map50=float(ap50),
                map50_95=float(ap),
            )
        )
    return SplitMetrics(
        split=split,
        map50=float(results.box.map50),
        map50_95=float(results.box.map),
        classes=tuple(classes),
        plots_dir=plots_dir,
    )


def first_device(device: str | None) -> str | None:
    """The first of a device list (``"0,1"`` -> ``"0"``), for single-device steps."""
    return device.split(",")[0].strip() if device else None
