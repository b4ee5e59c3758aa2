"""The demo's scores of detections against the video's known boxes."""

from __future__ import annotations

import numpy as np
import pytest

from azaion_training.demo.scoring import video_scores
from azaion_training.labels import Box


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
