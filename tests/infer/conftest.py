"""Fixtures for the inference tests: a small detector trained on synthetic scenes, and videos.

The detector is a YOLO11n trained for a few epochs on 150 synthetic 160x120 images (three classes,
one weather mode) and exported to ONNX with NMS inside (imgsz 128, batch 4). It detects the
synthetic objects with high confidence, so the tests compare real detections. It takes under a
minute on two CPU cores and is kept in pytest's cache folder (`tests.builds`) under a key that
hashes its recipe (`build_detector`, `train_short_run` and the constants here), the synthetic
world and the ONNX export code (`detector_key`), so any change to them builds it anew.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from azaion_training.classes import ClassTable, WeatherMode
from azaion_training.demo.world import write_annotations, write_video
from azaion_training.fs import AnnotationDir
from tests.builds import Build, builds_root, built
from tests.helpers import recipe_key

MODEL_IMGSZ = 128
MODEL_BATCH = 4
CLASSES = (0, 15)  # ArmorVehicle, Building: chunky shapes a short run learns well
"""Base classes the detector learns; the videos draw the same ones."""


@dataclass(frozen=True)
class Detector:
    """The trained test detector: its checkpoint and its ONNX export."""

    weights: Path
    onnx: Path


def build_detector(work: Path, *, epochs: int = 20, images: int = 150) -> Detector:
    """Trains the test detector into the empty folder ``work`` (``detector.pt``,
    ``detector.onnx``)."""
    from azaion_training.export.onnx import export_onnx

    for split, count, seed in (("train", images, 0), ("val", 8, 1)):
        write_annotations(
            AnnotationDir(work / "data" / split),
            count,
            seed=seed,
            width=160,  # 4:3 like the test videos, letterboxed into 128x128 as they are
            height=120,
            classes=CLASSES,
            mode=WeatherMode.NORM,
            objects=(2, 4),
            hard=False,
        )
    weights = work / "detector.pt"
    shutil.copyfile(train_short_run(work, val="val/images", epochs=epochs), weights)
    export_onnx(weights, work / "detector.onnx", imgsz=MODEL_IMGSZ, batch=MODEL_BATCH)
    for leftover in ("data", "train"):
        shutil.rmtree(work / leftover)
    return Detector(weights=weights, onnx=work / "detector.onnx")


def train_short_run(work: Path, *, val: str, epochs: int) -> Path:
    """Trains YOLO11n on the YOLO data set in ``work/data`` (``train/images``, ``val``) by the
    test models' recipe; returns ``work/train/weights/last.pt``."""
    from ultralytics import YOLO

    data_yaml = work / "data" / "data.yaml"
    table = ClassTable.default()
    content = {"path": str(work / "data"), "train": "train/images", "val": val}
    data_yaml.write_text(yaml.safe_dump({**content, "nc": len(table), "names": table.names}))
    YOLO("yolo11n.yaml").train(
        data=str(data_yaml),
        epochs=epochs,
        imgsz=MODEL_IMGSZ,
        batch=8,
        workers=0,
        device="cpu",
        project=str(work),
        name="train",
        exist_ok=True,
        plots=False,
        amp=False,
        val=False,
        verbose=False,
        seed=0,
        deterministic=True,
        # A short run learns fastest without warm-up and with mild augmentation.
        optimizer="AdamW",
        lr0=0.003,
        warmup_epochs=0,
        mosaic=0.0,
        scale=0.2,
        translate=0.05,
        hsv_h=0.0,
        hsv_s=0.2,
        hsv_v=0.2,
    )
    return work / "train" / "weights" / "last.pt"


def detector_key() -> str:
    """The cache key of the detector: its recipe, the synthetic world and the ONNX export."""
    from azaion_training.demo import world
    from azaion_training.export import onnx

    recipe = (build_detector, train_short_run, MODEL_IMGSZ, MODEL_BATCH, CLASSES)
    return recipe_key("infer-detector", *recipe, world, onnx)


DETECTOR = Build(
    fixture="detector",
    key=detector_key,
    make=build_detector,
    products=("detector.pt", "detector.onnx"),
)


@pytest.fixture(scope="session")
def detector(request: pytest.FixtureRequest) -> Detector:
    """The trained test detector, built once and kept in pytest's cache (`tests.builds`)."""
    folder = built(builds_root(request.config), DETECTOR)
    return Detector(weights=folder / "detector.pt", onnx=folder / "detector.onnx")


@pytest.fixture(scope="session")
def video_100(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 100-frame, 320x240, 25 fps synthetic video with the detector's classes."""
    path = tmp_path_factory.mktemp("videos") / "drift-100.mp4"
    write_video(path, frames=100, width=320, height=240, fps=25.0, classes=CLASSES, hard=False)
    return path


@pytest.fixture(scope="session")
def onnx_engine(detector: Detector):  # type: ignore[no-untyped-def]
    """The detector loaded in ONNX Runtime, shared by the tests of a session."""
    from azaion_training.infer.onnx import OnnxEngine

    engine = OnnxEngine(detector.onnx)
    yield engine
    engine.close()
