"""A model file or store name in, its `Evaluation` out, with the thresholds of the settings."""

from __future__ import annotations

import contextlib
from pathlib import Path

from azaion_training.classes import ClassTable
from azaion_training.config import Settings
from azaion_training.evaluate.run import Evaluation, evaluate_model
from azaion_training.fs import DataTree


def evaluate_with_settings(
    settings: Settings,
    tree: DataTree,
    split: Path,
    *,
    model: Path | None = None,
    from_store: str | None = None,
    classes: ClassTable | None = None,
    progress: bool = True,
) -> Evaluation:
    """Loads the model (`infer.load.open_engine`: a file, a store name, or the current model)
    and scores it on ``split`` at ``infer.conf``/``infer.iou``/``infer.batch`` and
    ``evaluate.score_conf``, the frames cut as ``infer.tiles`` says.

    Raises:
        EngineError, StoreError: the model does not load.
        DatasetError: the split cannot be read.
    """
    from azaion_training.infer.load import DEFAULT_KIND, engine_kind, open_engine, suffixes
    from azaion_training.infer.tiles import TilePlan

    name = from_store or str(model if model is not None else tree.current_model_onnx)
    known = Path(name).suffix.lower() in suffixes()
    engine = open_engine(settings, tree, model=model, from_store=from_store)
    with contextlib.closing(engine):
        return evaluate_model(
            engine,
            split,
            conf=settings.infer.conf,
            iou=settings.infer.iou,
            model=name,
            engine_kind=engine_kind(name) if known else DEFAULT_KIND,
            score_conf=settings.evaluate.score_conf,
            batch=settings.infer.batch,
            tiles=TilePlan.from_settings(settings.infer),
            classes=classes or ClassTable.load(settings.classes),
            progress=progress,
        )
