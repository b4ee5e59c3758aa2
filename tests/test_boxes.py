"""The shared box maths: IoU, greedy overlap removal, class-aware matching."""

from __future__ import annotations

import numpy as np
import pytest

from azaion_training.boxes import box_iou, greedy_nms, match_by_class

CHAIN = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], np.float32)  # A-B-C


@pytest.mark.parametrize(
    ("order", "iou", "classes", "kept"),
    [
        ([0, 1, 2], 0.3, None, [0, 2]),  # B overlaps A and C; a dropped B drops nothing
        ([1, 0, 2], 0.3, None, [1]),  # B first drops both neighbours
        ([1, 0, 2], 0.34, None, [1, 0, 2]),  # IoU 1/3 is not above 0.34
        ([1, 0, 2], 0.3, np.array([1, 2, 1]), [1, 0, 2]),  # other classes never drop each other
        ([1, 0, 2], 0.3, np.array([1, 1, 2]), [1, 2]),  # B drops A of its class, not C
        ([1, 0, 2], 0.3, np.array([1, 1, 1]), [1]),
        ([2, 0], 0.0, None, [2, 0]),  # boxes that only touch do not overlap
        ([], 0.3, None, []),
    ],
)
def test_greedy_nms(order: list[int], iou: float, classes: np.ndarray | None, kept: list[int]):
    assert greedy_nms(CHAIN, order, iou=iou, classes=classes).tolist() == kept


def test_match_by_class_takes_the_best_box_of_the_same_class() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    others = np.array([[1, 0, 11, 10], [0, 0, 10, 10], [0, 0, 10, 9]], np.float32)
    index, overlap = match_by_class(boxes, np.array([7, 3, 7]), others, np.array([7, 5, 7]))
    assert index.tolist() == [2, -1, 0]  # the best of class 7; no class 3; a far box's best
    np.testing.assert_allclose(overlap, [0.9, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(overlap[0], box_iou(boxes[:1], others[2:])[0, 0])


@pytest.mark.parametrize("empty", ["boxes", "others"])
def test_match_by_class_with_nothing_to_match(empty: str) -> None:
    some = np.array([[0, 0, 1, 1]], np.float32)
    none = np.zeros((0, 4), np.float32)
    boxes, others = (none, some) if empty == "boxes" else (some, none)
    index, overlap = match_by_class(boxes, np.ones(len(boxes)), others, np.ones(len(others)))
    assert index.tolist() == [-1] * len(boxes) and overlap.tolist() == [0.0] * len(boxes)


@pytest.mark.parametrize("classes", [None, "random"])
def test_greedy_nms_gives_the_same_answer_above_the_matrix_limit(
    classes: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azaion_training.boxes as boxes_module

    rng = np.random.default_rng(5)
    corners = rng.uniform(0, 200, (400, 2))
    boxes = np.column_stack([corners, corners + rng.uniform(5, 40, (400, 2))])
    ids = rng.integers(0, 3, 400) if classes else None
    order = np.argsort(-rng.uniform(size=400), kind="stable")
    by_matrix = greedy_nms(boxes, order, iou=0.3, classes=ids)
    monkeypatch.setattr(boxes_module, "MATRIX_LIMIT", 10)
    by_rows = greedy_nms(boxes, order, iou=0.3, classes=ids)
    assert 10 < len(by_rows) < 400
    assert by_rows.tolist() == by_matrix.tolist()
