"""Stills of a video, for the report."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def video_frames(video: Path, *, count: int) -> list[bytes]:
    """JPEG bytes of ``count`` frames spread evenly over ``video`` (fewer if it is short)."""
    capture = cv2.VideoCapture(str(video))
    try:
        total = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)  # -1 when it does not open
        frames = []
        for index in np.linspace(0, max(total - 1, 0), num=min(count, total), dtype=int):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = capture.read()
            if ok:
                frames.append(cv2.imencode(".jpg", frame)[1].tobytes())
        return frames
    finally:
        capture.release()
