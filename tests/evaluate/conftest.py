"""Fixtures of the evaluator tests: the detector loaded in ONNX Runtime, and split folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.classes import WeatherMode
from azaion_training.demo.world import write_annotations
from azaion_training.fs import AnnotationDir
from tests.infer.conftest import CLASSES, onnx_engine

__all__ = ["onnx_engine"]


def write_split(folder: Path, count: int, *, width: int, height: int, seed: int) -> Path:
    """A split folder (``images/``, ``labels/``) of synthetic scenes with the detector's classes."""
    write_annotations(
        AnnotationDir(folder),
        count,
        seed=seed,
        width=width,
        height=height,
        classes=CLASSES,
        mode=WeatherMode.NORM,
        objects=(2, 4),
        hard=False,
    )
    return folder


@pytest.fixture(scope="session")
def split_160(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames at the detector's training size (160x120)."""
    return write_split(tmp_path_factory.mktemp("split") / "test", 12, width=160, height=120, seed=3)
