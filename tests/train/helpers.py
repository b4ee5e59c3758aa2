"""Scores built by hand for the gate's and the report's tests."""

from __future__ import annotations

from azaion_training.evaluate.scores import (
    ClassScores,
    Confusion,
    EvaluatorSettings,
    Scores,
    SizeScores,
)
from azaion_training.evaluate.sizes import BUCKETS

SETTINGS = EvaluatorSettings(
    model="m.onnx",
    engine="onnx",
    imgsz=(128, 128),
    batch=4,
    tiles="off",
    tile_options={"mode": "off"},
    conf=0.3,
    iou=0.3,
    score_conf=0.001,
    match_iou=0.5,
    max_detections=300,
)


def scores_of(
    value: float, *, small: float | None = None, small_objects: int = 0, split: str = "/d/test"
) -> Scores:
    """Scores whose every AP is ``value``; ``under_32`` gets ``small`` and ``small_objects``."""
    sizes = tuple(
        SizeScores(b.key, b.label, 5, value, value, value, value)
        if b.key != "under_32"
        else SizeScores(b.key, b.label, small_objects, small, small, small, small)
        for b in BUCKETS
    )
    row = ClassScores(15, "Building", 10, 9, value, value, 0.8, 0.7, 0.75)
    return Scores(
        split=split,
        images=4,
        truths=10,
        map50=value,
        map50_95=value,
        precision=0.8,
        recall=0.7,
        f1=0.75,
        classes=(row,),
        sizes=sizes,
        curves={
            "confidence": [0.0, 0.5, 1.0],
            "precision": [0.5, 0.8, 0.0],
            "recall": [0.9, 0.7, 0.0],
            "f1": [0.6, 0.75, 0.0],
        },
        confusion=Confusion((15,), ("Building",), ((7, 3), (2, 0))),
        settings=SETTINGS,
        seconds=1.0,
    )
