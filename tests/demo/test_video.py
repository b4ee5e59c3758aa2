"""Stills of a video for the report."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from azaion_training.demo.video import video_frames
from azaion_training.demo.world import write_video


def test_video_frames_are_jpegs_spread_over_the_video(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    write_video(video, frames=10, width=64, height=48, seed=1)
    frames = video_frames(video, count=4)
    assert len(frames) == 4
    decoded = [cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR) for f in frames]
    assert all(image.shape == (48, 64, 3) for image in decoded)
    assert len(video_frames(video, count=40)) == 10  # never more than the video has
    assert video_frames(tmp_path / "missing.mp4", count=4) == []
