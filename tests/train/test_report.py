"""report.html from a result with real scores (the test detector evaluated as deployed on a
synthetic test split), checked for its content and in a real headless Chromium."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from azaion_training.dataset.formation import SplitCounts
from azaion_training.evaluate.run import Evaluation, evaluate_model
from azaion_training.fs import DataTree
from azaion_training.train.gate import decide, write_metrics
from azaion_training.train.report import REPORT_NAME, SECTIONS, DemoSection, write_report
from azaion_training.train.result import TrainResult
from tests.evaluate.conftest import write_split
from tests.services.chromium import CHROMIUM, browser_check
from tests.train.helpers import scores_of


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, onnx_engine) -> tuple[Path, Evaluation]:
    """A dataset with a test split, and the detector's evaluation on it."""
    dataset = tmp_path_factory.mktemp("datasets") / "azaion-2026-12-02"
    write_split(dataset / "test", 8, width=160, height=120, seed=3)
    write_split(dataset / "train", 2, width=160, height=120, seed=4)
    (dataset / "data.yaml").write_text("test: test/images\n")
    evaluation = evaluate_model(
        onnx_engine, dataset / "test", conf=0.3, iou=0.3, model="best.onnx", progress=False
    )
    return dataset, evaluation


@pytest.fixture
def result(tmp_path: Path, evaluated: tuple[Path, Evaluation]) -> TrainResult:
    tree = DataTree(root=tmp_path).create()
    dataset, evaluation = evaluated
    scores = evaluation.scores
    current = scores_of(0.9, split=scores.split)
    decision = decide(split="test", candidate=scores, current=current, tolerance=0.005, force=False)
    previous = tree.run_dir(dt.date(2026, 12, 1))
    previous.mkdir(parents=True)
    write_metrics(
        previous, decision=decision, candidate={"test": current}, current=None, dataset={}
    )
    run = tree.run_dir(dt.date(2026, 12, 2))
    (run / "weights").mkdir(parents=True)
    cv2.imwrite(str(run / "results.png"), np.full((40, 60, 3), 200, np.uint8))
    (run / "args.yaml").write_text(
        yaml.safe_dump(
            {"model": "yolo11n.yaml", "epochs": 3, "imgsz": 128, "lr0": 0.01, "warmup": 1}
        )
    )
    return TrainResult(
        run_dir=run,
        data_yaml=dataset / "data.yaml",
        counts={"train": SplitCounts(1, 8), "test": SplitCounts(8, 8)},
        best=run / "weights" / "best.pt",
        last=run / "weights" / "last.pt",
        model_pt=tree.current_model_pt,
        model_onnx=tree.current_model_onnx,
        metrics={"test": scores},
        plots=(),
        published=False,
        decision=decision,
        current_metrics=current,
        frames=evaluation.frames,
        previous_run=previous,
    )


def test_the_report_holds_every_section_and_the_numbers(result: TrainResult) -> None:
    path = write_report(result)
    assert path == result.run_dir / REPORT_NAME
    page = path.read_text()
    assert re.findall(r"<section id='([^']+)'>", page) == list(SECTIONS)
    scores = result.metrics["test"]
    assert "The candidate is worse than the current model, which stays in place." in page
    assert f"{scores.map50_95:.3f}" in page and "very tiny (2-8 px)" in page
    assert "ArmorVehicle" in page and "Building" in page
    assert "azaion-2026-12-01" in page  # the previous run beside this one
    assert "<td>lr0</td><td>0.01</td>" in page and "<td>ultralytics</td>" in page
    assert "IoU &ge; 0.5" in page and "test split" in page
    images = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(images) == 5 and all(src.startswith("data:image/png;base64,") for src in images)


def test_the_confusion_holds_only_the_classes_present(result: TrainResult) -> None:
    confusion = result.metrics["test"].confusion
    assert confusion.names == ("ArmorVehicle", "Building")
    assert len(confusion.counts) == 3 and all(len(row) == 3 for row in confusion.counts)


def test_missing_plots_and_previous_scores_are_said_plainly(result: TrainResult) -> None:
    (result.run_dir / "results.png").unlink()
    assert result.previous_run is not None
    (result.previous_run / "metrics.json").write_text("{not json")
    page = write_report(result).read_text()
    assert "results.png was not drawn" in page
    assert "has no scores as deployed" in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh)")
def test_chromium_shows_every_section_and_no_broken_image(
    result: TrainResult, tmp_path: Path
) -> None:
    demo = DemoSection(
        transport="RabbitMQ stream 'x' (a test)",
        timings={"queue": 1.5, "train": 10.0},
        video_frames=[cv2.imencode(".jpg", np.zeros((20, 30, 3), np.uint8))[1].tobytes()],
        video_line="6 frames",
        matching="IoU >= 0.5",
    )
    page = write_report(result, demo=demo)
    verdict = browser_check(page)
    assert verdict["sections"] == [*SECTIONS, "video", "timings"]
    assert verdict["images"] == 6 and verdict["broken"] == 0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh)")
def test_chromium_check_sees_a_broken_image(result: TrainResult) -> None:
    page = write_report(result)
    text = page.read_text()
    first = re.search(r"base64,([^']*)'", text)
    assert first is not None
    broken = base64.b64encode(b"\x89PNG not really").decode()
    page.write_text(text.replace(first[1], broken, 1))
    assert browser_check(page)["broken"] == 1
    assert json.dumps(result.metrics["test"].to_dict())
