"""The end-to-end demo in a reduced size (fewer images, 1 epoch), through a real RabbitMQ stream.

The main run has no queue configured, as on a fresh clone: the demo starts its own private node.
The user-data run takes a COCO file made here from the synthetic world.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from azaion_training.cli.demo import main
from azaion_training.config import Settings, load_settings
from azaion_training.demo.run import DemoPlan, DemoReport, demo_settings, run_demo
from azaion_training.fs import DataTree
from azaion_training.queue.broker import port_open
from azaion_training.store.models import open_store
from azaion_training.train.report import SECTIONS
from tests.services.chromium import CHROMIUM, browser_check
from tests.services.rabbitmq import available

PLAN = DemoPlan.quick()


def _settings(root: Path) -> Settings:
    return load_settings(environ={"AZAION_ROOT_DIR": str(root)}, env_file=None)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, DataTree, Settings]:
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    tree = DataTree(root=tmp_path_factory.mktemp("demo") / "root")
    settings = _settings(tree.root)  # no RabbitMQ configured, as on a fresh clone
    report = run_demo(settings, tree, plan=PLAN, progress=False)
    return report, tree, settings


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_the_annotations_travel_through_a_private_stream(demo) -> None:
    report, tree, _ = demo
    assert report.transport.startswith("RabbitMQ stream 'azaion-demo-")
    assert "private node" in report.transport and "no server was configured" in (
        report.transport_reason
    )
    assert report.annotations_sent == PLAN.annotations
    assert report.annotations_in_data == PLAN.annotations  # the Operator's ones were validated
    assert not list(tree.data_seed.labels.iterdir())
    assert not list(tree.queue_rejected.iterdir())
    offset = tree.offset_file.read_text()
    assert f"offset: {PLAN.annotations}" in offset  # 24 Created + 1 Validated, from 0
    port = int(report.transport.rsplit(":", 1)[1])
    assert not port_open(port)  # the demo stopped its node


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_every_artifact_exists_and_is_what_it_claims(demo) -> None:
    report, tree, settings = demo
    assert report.samples == 8 * PLAN.annotations
    assert sum(report.split_sources.values()) == PLAN.annotations
    assert report.model_pt.is_file() and report.model_onnx.is_file()
    session = ort.InferenceSession(str(report.model_onnx), providers=["CPUExecutionProvider"])
    (rows,) = session.run(None, {"images": np.zeros((4, 3, PLAN.imgsz, PLAN.imgsz), np.float32)})
    assert rows.shape == (4, 300, 6)
    with open_store(settings, tree) as store:
        assert store.fetch("azaion.onnx") == report.model_onnx.read_bytes()
    assert report.store_size == report.model_onnx.stat().st_size
    video = cv2.VideoCapture(str(report.annotated_video))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == report.frames_inferred
    video.release()
    lines = report.detections.read_text().splitlines()
    assert len(lines) == report.frames_inferred == PLAN.video_frames // 4
    assert [json.loads(line)["frame"] for line in lines] == list(range(0, PLAN.video_frames, 4))
    assert report.samples_grid.read_bytes().startswith(b"\x89PNG")
    assert {p.name for p in report.plots} >= {"results.png"}
    assert all(p.is_file() for p in report.plots)
    assert 0.0 <= report.test_map50 <= 1.0 and 0.0 <= report.video_recall <= 1.0
    assert 0.0 <= report.video_precision <= 1.0
    saved = json.loads((tree.root / "demo" / "report.json").read_text())
    assert saved["annotations_sent"] == PLAN.annotations
    text = (tree.root / "demo" / "report.txt").read_text()
    assert "test mAP50" in text and "per class" in text
    assert text.splitlines()[-1] == f"report: {report.report_html}"


@pytest.mark.slow
@pytest.mark.rabbitmq
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh)")
def test_the_report_opens_in_chromium_with_every_section(demo) -> None:
    report, _, _ = demo
    verdict = browser_check(report.report_html)
    assert verdict["sections"] == [*SECTIONS, "video", "timings"]
    assert verdict["broken"] == 0 and verdict["images"] >= 5 + 4  # plots, truth/pred, frames


def test_cli_refuses_a_folder_that_holds_something_else(tmp_path: Path, capsys) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["--root", str(tmp_path), "--quick", "--clean", "--no-stream"]) == 1
    assert "does not hold a previous demo" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_demo_settings_train_small_on_the_cpu_and_use_the_local_store() -> None:
    settings = load_settings(
        environ={"AZAION_API_URL": "https://api.example.invalid", "TRAINING_EPOCHS": "120"},
        env_file=None,
    )
    adapted = demo_settings(settings, PLAN)
    assert adapted.api.url is None
    t = adapted.training
    assert (t.model, t.epochs, t.imgsz, t.device) == ("yolo11n.yaml", 1, PLAN.imgsz, "cpu")
    assert (adapted.export.imgsz, adapted.export.batch) == (PLAN.imgsz, 4)
    assert settings.training.epochs == 120  # the caller's settings are untouched
