"""Fixtures of the export tests: a tiny trained model and the RKNN toolkit's environment."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from azaion_training.classes import ClassTable, WeatherMode
from azaion_training.demo.world import write_annotations
from azaion_training.fs import AnnotationDir
from tests.builds import Build, builds_root, built
from tests.helpers import recipe_key, require

REPO = Path(__file__).resolve().parents[2]
IMGSZ = 128


@dataclass(frozen=True)
class TinyModel:
    """A yolo11n trained briefly on synthetic buildings, and its dataset."""

    weights: Path
    dataset: Path


def make_dataset(root: Path) -> Path:
    """A formed-dataset-like folder: ``train``/``valid`` splits of 128 px synthetic buildings."""
    for split, count, seed in (("train", 48, 1), ("valid", 8, 2)):
        write_annotations(
            AnnotationDir(root / split),
            count,
            seed=seed,
            width=IMGSZ,
            height=IMGSZ,
            classes=(15,),
            mode=WeatherMode.NORM,
            objects=(1, 3),
            hard=False,
        )
    names = dict(enumerate(ClassTable.default().names))
    # No "path": Ultralytics takes the folder of data.yaml, so the built folder can be moved.
    data = {"train": "train/images", "val": "valid/images", "names": names}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root


def train_tiny_model(folder: Path) -> TinyModel:
    """Trains yolo11n.yaml from scratch for 30 short epochs on CPU (about a minute) into the empty
    ``folder`` (``tiny.pt``, ``dataset/``)."""
    from ultralytics import YOLO

    dataset = make_dataset(folder / "dataset")
    YOLO("yolo11n.yaml").train(
        data=str(dataset / "data.yaml"),
        epochs=30,
        imgsz=IMGSZ,
        batch=8,
        optimizer="AdamW",
        lr0=0.003,
        warmup_epochs=0,
        mosaic=0.0,
        device="cpu",
        workers=0,
        val=False,
        plots=False,
        amp=False,
        project=str(folder / "runs"),
        name="tiny",
        exist_ok=True,
        verbose=False,
    )
    weights = folder / "tiny.pt"
    (folder / "runs" / "tiny" / "weights" / "last.pt").rename(weights)
    return TinyModel(weights=weights, dataset=dataset)


def tiny_model_key() -> str:
    """The cache key of the tiny model: its recipe and the synthetic world."""
    from azaion_training.demo import world

    return recipe_key("tiny-building", make_dataset, train_tiny_model, IMGSZ, world)


TINY_MODEL = Build(
    fixture="tiny_model", key=tiny_model_key, make=train_tiny_model, products=("tiny.pt",)
)


@pytest.fixture(scope="session")
def tiny_model(request: pytest.FixtureRequest) -> TinyModel:
    """The tiny model, built once and kept in pytest's cache (`tests.builds`)."""
    folder = built(builds_root(request.config), TINY_MODEL)
    return TinyModel(weights=folder / "tiny.pt", dataset=folder / "dataset")


@pytest.fixture(scope="session")
def rknn_venv() -> Path:
    """The RKNN environment, built by ``scripts/test.sh`` (``scripts/setup_rknn.sh``) before the
    tests run, never inside them.

    Skips where the toolkit cannot be installed on this platform (the script's exit code 3: not
    x86-64 Linux, or no Python 3.11). An environment that is not built skips here and fails in CI.
    """
    venv = REPO / ".venv-rknn"
    script = REPO / "scripts" / "setup_rknn.sh"
    checked = subprocess.run(
        [str(script), "--check", str(venv)], capture_output=True, text=True, check=False
    )
    if checked.returncode == 3:
        pytest.skip(f"rknn-toolkit2 cannot be installed here: {checked.stderr.strip()}")
    require(
        None
        if checked.returncode == 0
        else f"the RKNN environment is not built ({checked.stderr.strip()}): run {script}"
    )
    return venv
