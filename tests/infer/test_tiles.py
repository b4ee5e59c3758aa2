"""Tiles: the slicing geometry, the merge, and SAHI's sliced prediction as the oracle."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from azaion_training.infer.frames import detect_frames
from azaion_training.infer.postprocess import Detections, postprocess
from azaion_training.infer.preprocess import Letterbox, to_input
from azaion_training.infer.tiles import TilePlan, merge, windows

from .helpers import RecordingEngine

CONF, IOU = 0.3, 0.3


def _first_frame(video: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(video))
    ok, image = capture.read()
    capture.release()
    assert ok
    return image


@pytest.mark.parametrize(
    ("frame_hw", "tile_hw", "overlap"),
    [
        ((240, 320), (128, 128), 0.2),
        ((1081, 1921), (640, 640), 0.25),
        ((100, 300), (100, 128), 0.0),
    ],
)
def test_windows_are_sahi_s_slices(frame_hw, tile_hw, overlap) -> None:
    from sahi.slicing import get_slice_bboxes

    theirs = get_slice_bboxes(
        frame_hw[0],
        frame_hw[1],
        slice_height=tile_hw[0],
        slice_width=tile_hw[1],
        overlap_height_ratio=overlap,
        overlap_width_ratio=overlap,
    )

    ours = [[w.x, w.y, w.x + w.w, w.y + w.h] for w in windows(frame_hw, tile_hw, overlap)]

    assert ours == theirs
    assert max(box[2] for box in ours) == frame_hw[1]  # the last tile is flush with the edge


def test_a_box_cut_at_a_tile_edge_is_joined() -> None:
    left = Detections.from_rows(np.array([[90, 10, 128, 30, 0.8, 2]]))  # cut by the edge at 128
    right = Detections.from_rows(np.array([[103, 10, 140, 30, 0.9, 2], [103, 10, 140, 30, 0.9, 5]]))

    joined = merge([left, right])

    assert sorted(joined.class_id.tolist()) == [2, 5]  # class-aware: the class-5 box stays
    box = joined[joined.class_id == 2]
    np.testing.assert_allclose(box.xyxy, [[90, 10, 140, 30]])  # the union of the two halves
    assert box.confidence.tolist() == pytest.approx([0.9])


def test_tiles_of_several_frames_fill_every_engine_call(onnx_engine, video_100: Path) -> None:
    frame = _first_frame(video_100)  # 320x240: 3x3 tiles of 128 and the whole frame
    engine = RecordingEngine(onnx_engine, dynamic=True)

    found = list(detect_frames(engine, [frame] * 3, conf=CONF, iou=IOU, batch=4, tiles=TilePlan()))

    assert engine.calls == [4] * 7 + [2]  # 30 pieces
    assert len(found) == 3
    for other in found[1:]:
        np.testing.assert_allclose(other.xyxy, found[0].xyxy)


@pytest.mark.parametrize("full_frame", [False, True])
def test_tiled_detections_agree_with_sahi(onnx_engine, video_100: Path, full_frame: bool) -> None:
    from sahi.predict import get_sliced_prediction

    frame = _first_frame(video_100)
    plan = TilePlan(mode="fixed", tile_hw=(128, 128), overlap=0.2, full_frame=full_frame)
    (ours,) = detect_frames(onnx_engine, [frame], conf=CONF, iou=IOU, tiles=plan)

    result = get_sliced_prediction(
        frame,
        _sahi_model(onnx_engine),
        slice_height=128,
        slice_width=128,
        overlap_height_ratio=0.2,
        overlap_width_ratio=0.2,
        perform_standard_pred=full_frame,
        postprocess_type="GREEDYNMM",
        postprocess_match_metric="IOS",
        postprocess_match_threshold=plan.match,
        postprocess_class_agnostic=False,
        verbose=0,
    )
    theirs = result.object_prediction_list

    assert len(ours) >= 3  # the check bites: objects found, some of them on several tiles
    assert len(ours) == len(theirs)
    their_boxes = np.array([p.bbox.to_xyxy() for p in theirs], np.float32)
    their_classes = np.array([p.category.id for p in theirs])
    distance = np.abs(ours.xyxy[:, None, :] - their_boxes[None, :, :]).max(axis=2)
    rows, columns = linear_sum_assignment(distance)
    assert distance[rows, columns].max() <= 2.0
    assert ours.class_id[rows].tolist() == their_classes[columns].tolist()


def _sahi_model(engine):  # type: ignore[no-untyped-def]
    """Our engine as a SAHI `DetectionModel`: one slice at a time, our whole-frame path on each."""
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction
    from sahi.utils.compatibility import fix_full_shape_list, fix_shift_amount_list

    class EngineModel(DetectionModel):
        def perform_inference(self, image: np.ndarray) -> None:
            box = Letterbox.fit(source_hw=image.shape[:2], target_hw=engine.input_size)
            rows = engine.run(to_input([box.apply(image)], batch_size=engine.batch_size))[0]
            self._original_predictions = postprocess(rows, letterbox=box, conf=CONF, iou=IOU)

        def _create_object_prediction_list_from_original_predictions(
            self, shift_amount_list=None, full_shape_list=None
        ) -> None:
            found: Detections = self._original_predictions
            shift = fix_shift_amount_list(shift_amount_list or [0, 0])[0]
            full = fix_full_shape_list(full_shape_list)
            full = full[0] if full else None
            self._object_prediction_list_per_image = [
                [
                    ObjectPrediction(
                        bbox=xyxy.tolist(),
                        category_id=int(class_id),
                        category_name=str(class_id),
                        score=float(score),
                        shift_amount=list(shift),
                        full_shape=full,
                    )
                    for xyxy, score, class_id in zip(
                        found.xyxy, found.confidence, found.class_id, strict=True
                    )
                ]
            ]

    return EngineModel(confidence_threshold=CONF, load_at_init=False, device="cpu")
