"""The end-to-end demo in a reduced size (fewer images, 1 epoch), through a real RabbitMQ stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from rstream import Producer

from azaion_training.cli.demo import main
from azaion_training.config import QueueSettings, Settings, load_settings
from azaion_training.demo.run import (
    DemoPlan,
    DemoReport,
    demo_messages,
    demo_settings,
    run_demo,
    video_scores,
)
from azaion_training.demo.world import write_annotations
from azaion_training.fs import AnnotationDir, DataTree
from azaion_training.labels import Box, read_label
from azaion_training.queue import decode_message
from azaion_training.queue.connection import connection_arguments
from azaion_training.store.models import open_store
from tests.queue.helpers import node_settings
from tests.services.rabbitmq import RabbitMQNode

PLAN = DemoPlan.quick()


@pytest.fixture(scope="module")
def demo(
    rabbitmq: RabbitMQNode, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DemoReport, DataTree, Settings]:
    tree = DataTree(root=tmp_path_factory.mktemp("demo") / "root")
    settings = load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)
    settings = settings.model_copy(update={"queue": node_settings(rabbitmq, stream="unused")})
    report = run_demo(settings, tree, plan=PLAN, stream=True, progress=False)
    return report, tree, settings


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_the_annotations_travel_through_the_stream(demo) -> None:
    report, tree, settings = demo
    assert report.transport.startswith("RabbitMQ stream 'azaion-demo-")
    assert report.annotations_sent == PLAN.annotations
    assert report.annotations_in_data == PLAN.annotations  # the Operator's ones were validated
    assert not list(tree.data_seed.labels.iterdir())
    assert not list(tree.queue_rejected.iterdir())
    offset = tree.offset_file.read_text()
    assert f"offset: {PLAN.annotations}" in offset  # 24 Created + 1 Validated, from 0
    stream = report.transport.split("'")[1]
    assert not asyncio.run(_stream_exists(settings.queue, stream))  # the demo removed its stream


async def _stream_exists(settings: QueueSettings, stream: str) -> bool:
    async with Producer(**connection_arguments(settings, name="test")) as producer:
        return await producer.stream_exists(stream)


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
    assert "test mAP50" in (tree.root / "demo" / "report.txt").read_text()


def test_operator_annotations_are_validated_in_bulk(tmp_path: Path) -> None:
    incoming = AnnotationDir(tmp_path / "incoming")
    names = write_annotations(incoming, 8, seed=3, width=64, height=64)
    messages = [decode_message(raw) for raw in demo_messages(incoming, operator_share=4)]
    roles = [m.role.name for m in messages[:-1]]
    assert roles == ["VALIDATOR"] * 3 + ["OPERATOR"] + ["VALIDATOR"] * 3 + ["OPERATOR"]
    assert messages[-1].status.name == "VALIDATED"
    assert messages[-1].names == (names[3], names[7])
    assert list(messages[0].detections) and all(
        d.box == b
        for d, b in zip(
            messages[0].detections, read_label(incoming.label_path(names[0])), strict=True
        )
    )


@pytest.mark.parametrize(
    ("boxes", "class_ids", "expected"),
    [
        ([[10, 10, 30, 30]], [1], (1.0, 1.0)),  # exact hit
        ([[10, 10, 30, 30]], [2], (0.0, 0.0)),  # right place, wrong class
        ([[20, 20, 40, 40]], [1], (0.0, 0.0)),  # same class, IoU 1/7
        ([[10, 10, 30, 30], [60, 60, 90, 90]], [1, 1], (1.0, 0.5)),  # a hit and a false alarm
        ([], [], (0.0, 0.0)),  # nothing found
    ],
)
def test_video_scores(boxes, class_ids, expected) -> None:
    truths = [[Box.from_xyxy(1, 0.1, 0.1, 0.3, 0.3)]]
    found = [(0, np.array(boxes, np.float32).reshape(-1, 4), np.array(class_ids, np.int64))]
    assert video_scores(found, truths, width=100, height=100) == expected


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
