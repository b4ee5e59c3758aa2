from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from azaion_training.config import InferSettings
from azaion_training.errors import EngineError, MediaError
from azaion_training.infer.load import open_engine
from azaion_training.infer.runner import (
    ANNOTATED_FILE,
    DETECTIONS_FILE,
    SUMMARY_FILE,
    infer_video,
)

from .helpers import RecordingEngine


def test_outputs_of_a_run(tmp_path: Path, onnx_engine, video_100: Path) -> None:
    seen: list[int] = []
    summary = infer_video(
        video_100,
        onnx_engine,
        tmp_path / "out",
        settings=InferSettings(),
        progress=False,
        on_result=lambda result: seen.append(result.frame.index),
    )
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [ANNOTATED_FILE, DETECTIONS_FILE, SUMMARY_FILE]
    )
    assert seen == list(range(0, 100, 4))

    lines = [json.loads(line) for line in (out / DETECTIONS_FILE).read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(0, 100, 4))
    assert [line["time_ms"] for line in lines] == [i * 40.0 for i in range(0, 100, 4)]
    detections = [d for line in lines for d in line["detections"]]
    assert detections, "the trained detector finds objects in the video"
    for d in detections:
        assert d["class_name"] == onnx_engine.class_names[d["class_id"]]
        assert 0.3 < d["confidence"] <= 1
        px, box = d["box_px"], d["box"]
        assert 0 <= px["x1"] < px["x2"] <= 320 and 0 <= px["y1"] < px["y2"] <= 240
        assert box["cx"] == pytest.approx((px["x1"] + px["x2"]) / 2 / 320, abs=1e-4)
        assert box["h"] == pytest.approx((px["y2"] - px["y1"]) / 240, abs=1e-4)

    written = json.loads((out / SUMMARY_FILE).read_text())
    assert written == json.loads(summary.to_json())
    assert (summary.frames_read, summary.frames_inferred) == (100, 25)
    assert summary.detections == len(detections) == sum(summary.detections_per_class.values())
    assert summary.engine == "onnxruntime/CPUExecutionProvider"
    assert summary.seconds > 0 and summary.fps > 0

    capture = cv2.VideoCapture(str(out / ANNOTATED_FILE))
    size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    assert size == (320, 240)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(25 / 4)
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 25
    capture.release()


def test_a_failing_engine_leaves_no_output_files(
    tmp_path: Path, onnx_engine, video_100: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(EngineError, match="on purpose"):
        infer_video(
            video_100,
            RecordingEngine(onnx_engine, fail_after=2),
            out,
            settings=InferSettings(),
            progress=False,
        )
    assert list(out.iterdir()) == []


def test_an_unreadable_video_leaves_no_output_files(tmp_path: Path, onnx_engine) -> None:
    video = tmp_path / "bad.mp4"
    video.write_bytes(b"\x00" * 1000)
    with pytest.raises(MediaError):
        infer_video(video, onnx_engine, tmp_path / "out", settings=InferSettings(), progress=False)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_the_current_model_is_the_default(settings, tree, detector) -> None:
    tree.current_model_onnx.write_bytes(detector.onnx.read_bytes())
    engine = open_engine(settings, tree)
    assert engine.input_size == (128, 128)
    engine.close()
