"""TensorRT on a GPU: an engine built from the test detector gives the rows ONNX Runtime gives.

Skipped unless both the ``tensorrt`` package and a CUDA GPU are present.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from azaion_training.demo.world import make_scene
from azaion_training.infer.load import load_engine
from azaion_training.infer.preprocess import Letterbox, to_input

from .conftest import CLASSES, Detector


def _gpu_missing() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "the tensorrt package is not installed (pip install 'azaion-training[tensorrt]')"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU"
    return None


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(_gpu_missing() is not None, reason=str(_gpu_missing())),
]


def _build_engine(onnx_path: Path, out: Path) -> Path:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), [
        str(parser.get_error(i)) for i in range(parser.num_errors)
    ]
    config = builder.create_builder_config()
    serialised = builder.build_serialized_network(network, config)
    assert serialised is not None
    out.write_bytes(bytes(serialised))
    return out


@pytest.mark.slow
def test_tensorrt_rows_match_onnx_runtime(detector: Detector, tmp_path: Path) -> None:
    engine_path = _build_engine(detector.onnx, tmp_path / "detector.engine")
    rng = np.random.default_rng(3)
    images = [make_scene(rng, width=160, height=120, classes=CLASSES).image for _ in range(4)]
    letterbox = Letterbox.fit(source_hw=(120, 160), target_hw=(128, 128))
    batch = to_input([letterbox.apply(image) for image in images])

    onnx = load_engine(detector.onnx)
    trt_engine = load_engine(
        engine_path.read_bytes(), kind="engine"
    )  # from bytes, as the store gives
    assert trt_engine.name.startswith("tensorrt-")
    assert (trt_engine.input_size, trt_engine.batch_size) == ((128, 128), 4)
    expected, got = onnx.run(batch), trt_engine.run(batch)
    assert got.shape == (4, 300, 6)
    assert (expected[..., 4] > 0.3).any()
    for mine, theirs in zip(got, expected, strict=True):  # rows may come in another order
        mine, theirs = _confident(mine), _confident(theirs)
        assert mine.shape == theirs.shape
        np.testing.assert_array_equal(mine[:, 5], theirs[:, 5])
        np.testing.assert_allclose(mine[:, :4], theirs[:, :4], atol=1.0)
        np.testing.assert_allclose(mine[:, 4], theirs[:, 4], atol=1e-2)
    trt_engine.close()
    onnx.close()


def _confident(rows: np.ndarray) -> np.ndarray:
    rows = rows[rows[:, 4] > 0.3]
    return rows[np.lexsort((rows[:, 1], rows[:, 0], rows[:, 5]))]


@pytest.mark.slow
def test_tensorrt_runs_the_tiled_path_like_onnx_runtime(
    detector: Detector, video_100: Path, tmp_path: Path
) -> None:
    """The same `detect_frames` tiling (pieces packed into the engine's batch of 4, merged back)
    on TensorRT gives ONNX Runtime's tiled detections."""
    import cv2

    from azaion_training.infer.frames import detect_frames
    from azaion_training.infer.tiles import TilePlan

    engine_path = _build_engine(detector.onnx, tmp_path / "detector.engine")
    capture = cv2.VideoCapture(str(video_100))
    frames = [capture.read()[1] for _ in range(2)]  # 320x240: 9 tiles + the whole frame each
    capture.release()
    plan = TilePlan(mode="fixed", tile_hw=(128, 128))
    onnx, trt_engine = load_engine(detector.onnx), load_engine(engine_path)
    expected = list(detect_frames(onnx, frames, conf=0.3, iou=0.3, tiles=plan))
    got = list(detect_frames(trt_engine, frames, conf=0.3, iou=0.3, tiles=plan))
    assert sum(len(found) for found in expected) > 0
    for mine, theirs in zip(got, expected, strict=True):
        assert len(mine) == len(theirs)
        order_m = np.lexsort((mine.xyxy[:, 1], mine.xyxy[:, 0], mine.class_id))
        order_t = np.lexsort((theirs.xyxy[:, 1], theirs.xyxy[:, 0], theirs.class_id))
        np.testing.assert_array_equal(mine.class_id[order_m], theirs.class_id[order_t])
        np.testing.assert_allclose(mine.xyxy[order_m], theirs.xyxy[order_t], atol=1.0)
    trt_engine.close()
    onnx.close()
