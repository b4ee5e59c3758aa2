from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from azaion_training.infer.frames import detect_frames
from azaion_training.infer.video import VideoDetection

from .helpers import RecordingEngine


def _decoded_frames(video: Path, *, every: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames, index = [], 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if index % every == 0:
            frames.append(image)
        index += 1
    capture.release()
    return frames


def test_still_frames_get_the_video_path_s_detections(onnx_engine, video_100: Path) -> None:
    with VideoDetection(video_100, onnx_engine, every=4, batch=4, conf=0.3, iou=0.3) as video:
        expected = [result.detections for result in video]
    frames = _decoded_frames(video_100, every=4)

    got = list(detect_frames(onnx_engine, frames, conf=0.3, iou=0.3))

    assert len(got) == len(expected) == 25
    assert sum(len(d) for d in got) > 0  # the detector finds something, so the check bites
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(ours.xyxy, theirs.xyxy, atol=1e-3)
        assert ours.class_id.tolist() == theirs.class_id.tolist()


def test_frames_of_different_sizes_fill_batches_in_order(onnx_engine, video_100: Path) -> None:
    frames = _decoded_frames(video_100, every=20)  # 5 frames
    resized = [frames[0], cv2.resize(frames[1], (640, 480)), *frames[2:]]
    engine = RecordingEngine(onnx_engine, dynamic=True)

    got = list(detect_frames(engine, resized, conf=0.3, iou=0.3, batch=2))
    alone = [next(detect_frames(onnx_engine, [frame], conf=0.3, iou=0.3)) for frame in resized]

    assert engine.calls == [2, 2, 1]
    for ours, single in zip(got, alone, strict=True):
        np.testing.assert_allclose(ours.xyxy, single.xyxy, atol=1e-3)
