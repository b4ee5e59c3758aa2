"""Video truth (issue 26): container timestamps, videos that end early, the exact frame size."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.config import InferSettings
from azaion_training.infer.runner import ANNOTATED_FILE, SUMMARY_FILE, infer_video
from azaion_training.infer.video import VideoDetection


def _write(path: Path, frames: list[np.ndarray], pts_ms: list[int], *, faststart: bool) -> Path:
    """An MPEG-4 video with the given presentation times (PyAV writes what OpenCV cannot)."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for image, pts in zip(frames, pts_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _noise(count: int, *, width: int = 96, height: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def test_times_come_from_the_container_with_a_variable_frame_rate(
    tmp_path: Path, onnx_engine
) -> None:
    pts = [0, 40, 80, 500, 540, 1500, 1540, 1580, 3000, 3040]  # bursts: 3.3 frames/s on average
    video = _write(tmp_path / "vfr.mp4", _noise(len(pts)), pts, faststart=False)

    with VideoDetection(video, onnx_engine, every=1, batch=4, conf=0.3, iou=0.3) as run:
        times = [result.frame.time_ms for result in run]

    assert times == pytest.approx(pts, abs=1)  # index * 1000 / fps would put frame 9 at 2772


def test_a_video_that_ends_early_is_reported_incomplete(
    tmp_path: Path, onnx_engine, caplog: pytest.LogCaptureFixture
) -> None:
    whole = _write(tmp_path / "whole.mp4", _noise(20), [i * 40 for i in range(20)], faststart=True)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the header still declares 20 frames

    full = infer_video(whole, onnx_engine, tmp_path / "a", settings=InferSettings(), progress=False)
    short = infer_video(cut, onnx_engine, tmp_path / "b", settings=InferSettings(), progress=False)

    assert (full.complete, full.frames_read, full.frames_declared) == (True, 20, 20)
    assert not short.complete and short.frames_declared == 20 and short.frames_read < 20
    assert json.loads((tmp_path / "b" / SUMMARY_FILE).read_text())["complete"] is False
    assert f"INCOMPLETE: the video ended after {short.frames_read} of the 20" in short.line()
    assert "INCOMPLETE" not in full.line()
    assert any("cut or damaged" in r.message for r in caplog.records if r.levelname == "WARNING")


def test_the_annotated_video_keeps_an_odd_input_size(tmp_path: Path, onnx_engine) -> None:
    video = _write(
        tmp_path / "odd.mp4", _noise(4, width=321, height=241), [0, 40, 80, 120], faststart=False
    )

    summary = infer_video(
        video, onnx_engine, tmp_path / "out", settings=InferSettings(every=1), progress=False
    )

    capture = cv2.VideoCapture(str(tmp_path / "out" / ANNOTATED_FILE))
    ok, image = capture.read()
    capture.release()
    assert ok and image.shape[:2] == (241, 321)
    assert (summary.width, summary.height) == (321, 241)
