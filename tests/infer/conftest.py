"""The one trained model of the test suite (`detector`, for every area), and test videos.

The detector is a YOLO11n trained for a few epochs on 150 synthetic 160x120 images (two classes,
one weather mode) and exported to ONNX with NMS inside (imgsz 128, batch 4). It detects the
synthetic objects with high confidence, so the tests compare real detections. Its dataset is kept
beside it as a formed dataset (``train``/``valid`` splits and ``data.yaml``) for the export
tests' calibration and check images. It takes about 1.5 minutes on two CPU cores and is cached in
pytest's cache folder under a key that hashes its recipe (`build_detector` and the constants
here), the synthetic world and the ONNX export code (`detector_key`), so any change to them builds
it anew; a clean clone (CI) builds it once per run.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from azaion_training.classes import ClassTable, WeatherMode
from azaion_training.demo.world import write_annotations, write_video
from azaion_training.fs import AnnotationDir
from tests.helpers import recipe_key

MODEL_IMGSZ = 128
MODEL_BATCH = 4
CLASSES = (0, 15)  # ArmorVehicle, Building: chunky shapes a short run learns well
"""Base classes the detector learns; the videos draw the same ones."""


@dataclass(frozen=True)
class Detector:
    """The trained test detector: its checkpoint, its ONNX export and the dataset it learnt."""

    weights: Path
    onnx: Path
    dataset: Path
    """A formed-dataset-like folder: ``train`` (150 images) and ``valid`` (8), ``data.yaml``."""


def build_detector(folder: Path, *, epochs: int = 20, images: int = 150) -> Detector:
    """Trains the test detector into ``folder`` (``detector.pt``, ``detector.onnx``, ``dataset``).

    The build happens in a temporary folder beside ``folder`` that is renamed into place, so an
    interrupted build leaves nothing that looks finished.
    """
    from ultralytics import YOLO

    from azaion_training.export.onnx import export_onnx

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    for split, count, seed in (("train", images, 0), ("valid", 8, 1)):
        write_annotations(
            AnnotationDir(work / "dataset" / split),
            count,
            seed=seed,
            width=160,  # 4:3 like the test videos, letterboxed into 128x128 as they are
            height=120,
            classes=CLASSES,
            mode=WeatherMode.NORM,
            objects=(2, 4),
            hard=False,
        )
    data_yaml = work / "dataset" / "data.yaml"
    data_yaml.write_text(
        yaml.safe_dump(
            {
                "path": str(work / "dataset"),  # rewritten once renamed into place
                "train": "train/images",
                "val": "valid/images",
                "nc": len(ClassTable.default()),
                "names": ClassTable.default().names,
            }
        )
    )
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
    weights = work / "detector.pt"
    shutil.copyfile(work / "train" / "weights" / "last.pt", weights)
    export_onnx(weights, work / "detector.onnx", imgsz=MODEL_IMGSZ, batch=MODEL_BATCH)
    shutil.rmtree(work / "train")
    for cache in (work / "dataset").rglob("*.cache"):  # Ultralytics' label caches
        cache.unlink()
    data_yaml.write_text(data_yaml.read_text().replace(str(work), str(folder)))
    work.rename(folder)
    return Detector(folder / "detector.pt", folder / "detector.onnx", folder / "dataset")


def detector_key() -> str:
    """The cache key of the detector: its recipe, the synthetic world and the ONNX export."""
    from azaion_training.demo import world
    from azaion_training.export import onnx

    recipe = (build_detector, MODEL_IMGSZ, MODEL_BATCH, CLASSES)
    return recipe_key("infer-detector", *recipe, world, onnx)


@pytest.fixture(scope="session")
def detector(request: pytest.FixtureRequest) -> Detector:
    """The trained test detector, built once and kept in pytest's cache."""
    folder = request.config.cache.mkdir(detector_key()) / "model"
    found = Detector(folder / "detector.pt", folder / "detector.onnx", folder / "dataset")
    if found.weights.is_file() and found.onnx.is_file() and found.dataset.is_dir():
        return found
    shutil.rmtree(folder, ignore_errors=True)
    return build_detector(folder)


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
