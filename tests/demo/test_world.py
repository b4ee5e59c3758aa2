"""The synthetic world: exact labels, and hard enough that colour alone does not classify it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.classes import WeatherMode
from azaion_training.demo.world import make_scene, write_annotations, write_video
from azaion_training.fs import AnnotationDir
from azaion_training.labels import Box, read_label


def nearest_colour_accuracy(
    *, hard: bool, base: bool = False, scenes: int = 240, size: int = 160
) -> float:
    """A nearest-colour classifier on box crops: class centroids of the crops' median colours
    from the first half of the scenes, scored on the second half (on base classes if ``base``)."""
    rng = np.random.default_rng(5)
    colours: list[np.ndarray] = []
    labels: list[int] = []
    for _ in range(scenes):
        scene = make_scene(rng, width=size, height=size, objects=(3, 8), hard=hard)
        for box in scene.boxes:
            x1, y1, x2, y2 = (np.array(box.xyxy) * size).round().astype(int)
            crop = scene.image[y1 : max(y2, y1 + 1), x1 : max(x2, x1 + 1)].reshape(-1, 3)
            colours.append(np.median(crop, axis=0))
            labels.append(box.class_id % 20 if base else box.class_id)
    features, truth = np.array(colours, np.float32), np.array(labels)
    half = len(truth) // 2
    classes = np.unique(truth[:half])
    centroids = np.array([features[:half][truth[:half] == c].mean(axis=0) for c in classes])
    distances = np.linalg.norm(features[half:, None] - centroids[None], axis=2)
    return float((classes[distances.argmin(axis=1)] == truth[half:]).mean())


def test_nearest_colour_baseline_fails_on_the_hard_world() -> None:
    # The baseline does work where colour tells the class: the plain world's base classes.
    assert nearest_colour_accuracy(hard=False, base=True) > 0.9
    assert nearest_colour_accuracy(hard=True, base=True) < 0.6  # 4 base classes
    assert nearest_colour_accuracy(hard=True) < 0.6  # 12 classes: base class and weather mode


@pytest.mark.parametrize("hard", [True, False])
def test_labels_are_exact_boxes_inside_the_image(tmp_path: Path, hard: bool) -> None:
    folder = AnnotationDir(tmp_path)
    names = write_annotations(folder, 20, seed=1, width=160, height=120, hard=hard)
    boxes = [box for name in names for box in read_label(folder.label_path(name))]
    assert boxes and all(0 <= v <= 1 for box in boxes for v in box.xyxy)
    assert {box.class_id % 20 for box in boxes} <= {0, 1, 2, 15}
    image = cv2.imread(str(folder.image_path(names[0], ".jpg")))
    assert image.shape == (120, 160, 3)


def test_the_hard_world_has_small_rotated_overlapping_objects() -> None:
    rng = np.random.default_rng(2)
    scenes = [make_scene(rng, width=160, height=160, objects=(4, 9)) for _ in range(80)]
    boxes = [box for scene in scenes for box in scene.boxes]
    sides = np.array([max(box.w, box.h) * 160 for box in boxes])
    assert sides.min() <= 10 and np.percentile(sides, 95) >= 4 * np.percentile(sides, 5)
    assert any(
        _overlap(a, b) for scene in scenes for a in scene.boxes for b in scene.boxes if a != b
    )
    assert {scene.mode for scene in scenes} == set(WeatherMode)


def _overlap(a: Box, b: Box) -> bool:
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a.xyxy, b.xyxy
    return min(ax2, bx2) > max(ax1, bx1) and min(ay2, by2) > max(ay1, by1)


@pytest.mark.parametrize("hard", [True, False])
def test_video_boxes_follow_the_camera(tmp_path: Path, hard: bool) -> None:
    path = tmp_path / "video.mp4"
    truths = write_video(path, frames=30, width=160, height=120, seed=4, hard=hard)
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(truths) == 30
    capture.release()
    assert all(0 <= v <= 1 for frame in truths for box in frame for v in box.xyxy)
    assert sum(map(len, truths)) > 0
    if hard:  # the camera zooms: the same object changes size
        sizes = {round(box.w, 3) for frame in truths for box in frame}
        assert len(sizes) > len(truths[0])
