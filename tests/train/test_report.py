"""report.html: every section, images embedded, checked in a real headless Chromium.

The run folder here is built from real files (PNG and JPEG plots, a dataset with labels, a gate
record), so the report's reading and rendering is tested without a training run; the demo's
tests check a report that a real training wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.dataset.formation import SplitCounts
from azaion_training.labels import Box, write_label
from azaion_training.train.evaluate import ClassMetrics, SplitMetrics
from azaion_training.train.job import TrainResult
from azaion_training.train.report import (
    GATE_FILE,
    REPORT_NAME,
    SECTIONS,
    DemoSection,
    class_counts,
    write_report,
)
from tests.services.chromium import CHROMIUM, browser_check


def _png(path: Path, value: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((40, 60, 3), value, np.uint8))
    return path


@pytest.fixture
def result(tmp_path: Path) -> TrainResult:
    run = tmp_path / "models" / "azaion-2026-12-02"
    dataset = tmp_path / "datasets" / "azaion-2026-12-02"
    for split, boxes in (("train", [0, 0, 20]), ("valid", [1]), ("test", [15, 40, 40])):
        write_label(
            dataset / split / "labels" / "a.txt",
            [Box(class_id=c, cx=0.5, cy=0.5, w=0.1, h=0.1) for c in boxes],
        )
    (dataset / "data.yaml").write_text("test: test/images\n")
    _png(run / "results.png")
    for name in ("BoxPR_curve.png", "confusion_matrix_normalized.png"):
        _png(run / "test" / name)
    for name in ("val_batch0_labels.jpg", "val_batch0_pred.jpg"):
        cv2.imwrite(str(run / "test" / name), np.zeros((30, 30, 3), np.uint8))
    test = SplitMetrics(
        split="test",
        map50=0.5,
        map50_95=0.25,
        classes=(ClassMetrics(15, "Building", 1, 0.75, 0.5), ClassMetrics(40, "X", 2, 0.25, 0.0)),
        plots_dir=run / "test",
    )
    return TrainResult(
        run_dir=run,
        data_yaml=dataset / "data.yaml",
        counts={"train": SplitCounts(1, 8), "valid": SplitCounts(1, 1), "test": SplitCounts(1, 1)},
        best=run / "weights" / "best.pt",
        last=run / "weights" / "last.pt",
        model_pt=tmp_path / "azaion.pt",
        model_onnx=tmp_path / "azaion.onnx",
        metrics={"test": test},
        plots=(),
        published=False,
    )


def test_class_counts_per_split(result: TrainResult) -> None:
    counts = class_counts(result.data_yaml.parent)
    assert counts["train"] == {0: 2, 20: 1}
    assert counts["test"] == {15: 1, 40: 2}


def test_the_report_holds_every_section_and_the_numbers(result: TrainResult) -> None:
    (result.run_dir / GATE_FILE).write_text(json.dumps({"decision": "promoted", "current": 0.4}))
    path = write_report(result)
    assert path == result.run_dir / REPORT_NAME
    page = path.read_text()
    for section in SECTIONS:
        assert f"<section id='{section}'>" in page
    assert "<section id='video'>" not in page  # only the demo's report has it
    assert "promoted" in page and "0.750" in page and "Building" in page
    assert "<th>Night test</th>" in page and "<td>Building</td><td>0</td>" in page
    images = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(images) == 5 and all(src.startswith("data:image/") for src in images)


def test_missing_plots_and_gate_are_said_plainly(result: TrainResult) -> None:
    (result.run_dir / "results.png").unlink()
    (result.run_dir / GATE_FILE).write_text("{not json")
    page = write_report(result).read_text()
    assert "results.png was not drawn" in page
    assert f"{GATE_FILE} is unreadable" in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh)")
def test_chromium_shows_every_section_and_no_broken_image(result: TrainResult) -> None:
    demo = DemoSection(
        transport="RabbitMQ stream 'x' (a test)",
        timings={"queue": 1.5, "train": 10.0},
        video_frames=[cv2.imencode(".jpg", np.zeros((20, 30, 3), np.uint8))[1].tobytes()],
        video_line="6 frames",
    )
    verdict = browser_check(write_report(result, demo=demo))
    assert verdict["sections"] == [*SECTIONS, "video", "timings"]
    assert verdict["images"] == 6 and verdict["broken"] == 0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh)")
def test_chromium_check_sees_a_broken_image(result: TrainResult) -> None:
    (result.run_dir / "results.png").write_bytes(b"\x89PNG not really")
    verdict = browser_check(write_report(result))
    assert verdict["broken"] == 1
