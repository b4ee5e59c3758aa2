from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.demo.world import write_video
from azaion_training.errors import MediaError
from azaion_training.infer.video import (
    BackgroundWriter,
    FrameSampler,
    VideoDetection,
    VideoFile,
    open_video,
)

from .helpers import RecordingEngine


class CountingCapture:
    """A real `cv2.VideoCapture` that counts how often frames are grabbed and retrieved."""

    def __init__(self, path: Path) -> None:
        self._capture = cv2.VideoCapture(str(path))
        self.grabs = 0
        self.retrieves = 0

    def grab(self) -> bool:
        self.grabs += 1
        return self._capture.grab()

    def retrieve(self):  # type: ignore[no-untyped-def]
        self.retrieves += 1
        return self._capture.retrieve()

    def get(self, prop: int) -> float:
        return self._capture.get(prop)


@pytest.mark.parametrize(
    ("frames", "every", "expected_indices"),
    [
        (100, 4, list(range(0, 100, 4))),  # the default: 25 of 100
        (10, 1, list(range(10))),  # every frame
        (10, 3, [0, 3, 6, 9]),  # a length that is not a multiple
        (3, 5, [0]),  # fewer frames than the step
    ],
)
def test_sampler_retrieves_only_the_sampled_frames(
    tmp_path: Path, frames: int, every: int, expected_indices: list[int]
) -> None:
    path = tmp_path / "v.mp4"
    write_video(path, frames=frames, width=64, height=48, fps=25.0)
    capture = CountingCapture(path)
    sampler = FrameSampler(capture, every=every, fps=25.0)  # type: ignore[arg-type]
    sampled = list(sampler)
    assert [f.index for f in sampled] == expected_indices
    assert [f.time_ms for f in sampled] == [i * 40.0 for i in expected_indices]
    assert all(f.image.shape == (48, 64, 3) for f in sampled)
    assert sampler.frames_read == frames
    assert capture.grabs == frames + 1  # the last grab finds the end
    assert capture.retrieves == len(expected_indices)


def test_a_100_frame_video_gives_25_inferred_frames(onnx_engine, video_100: Path) -> None:
    with VideoDetection(video_100, onnx_engine, every=4, batch=4, conf=0.3, iou=0.3) as run:
        results = list(run)
    assert [r.frame.index for r in results] == list(range(0, 100, 4))
    assert [r.frame.time_ms for r in results] == [i * 40.0 for i in range(0, 100, 4)]
    assert (run.frames_read, run.frames_inferred) == (100, 25)
    assert sum(len(r.detections) for r in results) > 0


@pytest.mark.parametrize(
    ("dynamic", "expected_calls"),
    [
        (False, [4, 4, 4, 4, 4, 4]),  # fixed batch: the last 3 frames are padded to 4
        (True, [4, 4, 4, 4, 4, 3]),  # any batch: the last call is short
    ],
)
def test_the_last_partial_batch_is_flushed(
    tmp_path: Path, onnx_engine, dynamic: bool, expected_calls: list[int]
) -> None:
    path = tmp_path / "v90.mp4"
    write_video(path, frames=90, width=160, height=120)  # 23 sampled frames: 5 batches + 3
    engine = RecordingEngine(onnx_engine, dynamic=dynamic)
    with VideoDetection(path, engine, every=4, batch=4, conf=0.3, iou=0.3) as run:
        results = list(run)
    assert engine.calls == expected_calls
    assert [r.frame.index for r in results] == list(range(0, 90, 4))
    assert run.frames_inferred == 23


def test_padded_images_give_no_results(tmp_path: Path, onnx_engine) -> None:
    path = tmp_path / "v1.mp4"
    write_video(path, frames=1, width=160, height=120)
    with VideoDetection(path, onnx_engine, every=4, batch=4, conf=0.3, iou=0.3) as run:
        results = list(run)
    assert [r.frame.index for r in results] == [0]


def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return path


def _truncated(tmp_path: Path) -> Path:
    whole = tmp_path / "whole.mp4"
    write_video(whole, frames=20, width=64, height=48)
    path = tmp_path / "truncated.mp4"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return path


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.mp4", "does not exist"),  # missing
        (lambda tmp: tmp, "is a folder, not a video file"),  # a mistyped path: the folder
        (_corrupt, "not a video|no frame decodes"),  # random bytes
        (_truncated, "not a video|no frame decodes"),  # the index at the end is cut off
        (_text, "not a video|no frame decodes"),  # text
    ],
)
def test_unreadable_videos_are_one_clear_error(tmp_path: Path, onnx_engine, make, message) -> None:
    path = make(tmp_path)
    with (
        pytest.raises(MediaError, match=message),
        VideoDetection(path, onnx_engine, every=4, batch=4, conf=0.3, iou=0.3) as run,
    ):
        list(run)


def test_open_video_reads_the_container(video_100: Path) -> None:
    capture, info = open_video(video_100)
    capture.release()
    assert (info.width, info.height, info.fps, info.frame_count) == (320, 240, 25.0, 100)


def test_leaving_early_stops_the_reader(tmp_path: Path, onnx_engine) -> None:
    path = tmp_path / "long.mp4"
    write_video(path, frames=400, width=64, height=48)
    before = threading.active_count()
    with VideoDetection(path, onnx_engine, every=1, batch=4, conf=0.3, iou=0.3) as run:
        next(iter(run))
    assert threading.active_count() == before
    assert run.frames_read < 400


def test_background_writer_handles_items_in_order_on_its_thread() -> None:
    seen: list[tuple[int, str]] = []
    finished: list[str] = []
    with BackgroundWriter(
        lambda item: seen.append((item, threading.current_thread().name)),
        finish=lambda: finished.append(threading.current_thread().name),
        queue_size=2,
        name="test-writer",
    ) as writer:
        for item in range(20):
            writer.put(item)
    assert seen == [(i, "test-writer") for i in range(20)]
    assert finished == ["test-writer"]


def test_background_writer_raises_the_error_of_its_thread() -> None:
    def handle(item: int) -> None:
        if item == 3:
            raise MediaError("disk full")

    with (
        pytest.raises(MediaError, match="disk full"),
        BackgroundWriter(handle, queue_size=1) as writer,
    ):
        for item in range(1000):
            writer.put(item)


def test_video_file_appears_only_when_complete(tmp_path: Path) -> None:
    frame = np.zeros((48, 64, 3), np.uint8)
    with VideoFile(tmp_path / "a.mp4", fps=5.0, size_wh=(64, 48)) as video:
        video.write(frame)
        assert list(tmp_path.iterdir()) == [tmp_path / ".a.partial.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]
    with (
        pytest.raises(MediaError, match="frame is 32x48"),
        VideoFile(tmp_path / "b.mp4", fps=5.0, size_wh=(64, 48)) as video,
    ):
        video.write(np.zeros((48, 32, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]
