"""The run's models as they are deployed, for the gate and the report: exported to ONNX (NMS
in the graph, ``export.imgsz``, ``export.batch``) and scored by `azaion_training.evaluate`.

Ultralytics' validator only draws the training curves (its validation each epoch).
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from azaion_training.config import Settings
from azaion_training.errors import DatasetError
from azaion_training.evaluate.run import Evaluation
from azaion_training.export.onnx import export_onnx
from azaion_training.fs import DataTree, dated_order

logger = logging.getLogger(__name__)

_SPLIT_KEYS = {"valid": "val", "test": "test"}


def export_for_scoring(weights: Path, out: Path, settings: Settings) -> Path:
    """Exports ``weights`` as it would be deployed (`export_onnx` with the export settings)."""
    return export_onnx(
        weights,
        out,
        imgsz=settings.export.imgsz,
        batch=settings.export.batch,
        nms=True,
        device=first_device(settings.training.device),
    )


def current_deployed(tree: DataTree, run_dir: Path, settings: Settings) -> Path | None:
    """The current model as deployed: ``models/azaion.onnx`` when it is not older than
    ``models/azaion.pt``, else that ``.pt`` exported into ``run_dir/current/``; ``None`` when
    there is no current model."""
    onnx, pt = tree.current_model_onnx, tree.current_model_pt
    if onnx.is_file() and (not pt.is_file() or onnx.stat().st_mtime >= pt.stat().st_mtime):
        return onnx
    if pt.is_file():
        return export_for_scoring(pt, run_dir / "current" / "azaion.onnx", settings)
    return None


def score(
    model: Path, split_dir: Path, settings: Settings, tree: DataTree, *, progress: bool
) -> Evaluation:
    """Scores an exported model on one split folder (`evaluate_with_settings`)."""
    from azaion_training.evaluate.model import evaluate_with_settings

    return evaluate_with_settings(settings, tree, split_dir, model=model, progress=progress)


def evaluable_splits(data_yaml: Path) -> list[str]:
    """The scored splits a ``data.yaml`` has: ``valid``, and ``test`` when it names one."""
    try:
        content = yaml.safe_load(data_yaml.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(f"cannot read {data_yaml}: {exc}") from exc
    return [split for split, key in _SPLIT_KEYS.items() if content.get(key)]


def previous_run(tree: DataTree, run_dir: Path) -> Path | None:
    """The newest run folder older than ``run_dir`` (by ``(date, N)``), if any."""
    mine = dated_order(run_dir.name)
    older = [
        (order, path)
        for path in (tree.models.iterdir() if tree.models.is_dir() else ())
        if path.is_dir() and (order := dated_order(path.name)) is not None
        if mine is None or order < mine
    ]
    return max(older)[1] if older else None


def first_device(device: str | None) -> str | None:
    """The first of a device list (``"0,1"`` -> ``"0"``), for single-device steps."""
    return device.split(",")[0].strip() if device else None
