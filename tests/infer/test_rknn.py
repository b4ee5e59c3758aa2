"""`RknnEngine` with the board runtime replaced by recorded outputs (`ReplayRuntime`).

The end-to-end check (an exported ``.rknn``, its metadata and the toolkit simulator's outputs
against ONNX Runtime) is in tests/export/test_rknn.py, where the RKNN environment is made.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from azaion_training.errors import EngineError
from azaion_training.infer.load import load_engine
from azaion_training.infer.metadata import ModelMetadata, write_metadata
from azaion_training.infer.rknn import RknnEngine

from .helpers import ReplayRuntime

NAMES = ["car", "truck", "tank"]
IMGSZ = 32


def head(batch: int, boxes: list[tuple[int, float, float, int, float]]) -> np.ndarray:
    """Raw head ``[batch, 4 + 3, 16]``: ``(image, cx, cy, class, score)`` boxes 0.25 wide."""
    raw = np.zeros((batch, 4 + len(NAMES), 16), np.float32)
    for anchor, (image, cx, cy, cls, score) in enumerate(boxes):
        raw[image, :, anchor] = [cx, cy, 0.25, 0.25, 0, 0, 0]
        raw[image, 4 + cls, anchor] = score
    return raw


def images(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, IMGSZ, IMGSZ, 3), dtype=np.uint8)


def as_input(nhwc: np.ndarray) -> np.ndarray:
    """The engine contract's batch for uint8 NHWC images (what the video runner sends)."""
    return (nhwc.transpose(0, 3, 1, 2) / 255).astype(np.float32)


def test_engine_decodes_the_raw_head_into_the_engine_contract(tmp_path: Path) -> None:
    model = tmp_path / "azaion.rk3588.rknn"
    write_metadata(model, ModelMetadata(imgsz=IMGSZ, batch=2, names=NAMES))
    inputs = images(2)
    raw = head(2, [(0, 0.5, 0.5, 2, 0.9), (1, 0.25, 0.75, 0, 0.6), (1, 0.5, 0.5, 1, 0.2)])
    runtime = ReplayRuntime(inputs, raw, batch=2)
    engine = RknnEngine(model, runtime=runtime)
    assert (engine.input_size, engine.batch_size, engine.class_names) == ((32, 32), 2, NAMES)

    rows = engine.run(as_input(inputs))
    assert rows.shape == (2, 300, 6) and rows.dtype == np.float32
    np.testing.assert_allclose(rows[0, 0], [12, 12, 20, 20, 0.9, 2], atol=1e-5)
    np.testing.assert_allclose(rows[1, 0], [4, 20, 12, 28, 0.6, 0], atol=1e-5)
    assert not rows[0, 1:].any() and not rows[1, 1:].any()  # 0.2 is below the graph's 0.25
    assert runtime.calls == 1
    engine.close()
    assert runtime.released


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((1, 3, IMGSZ, IMGSZ), np.float32), r"expected \[2, 3, 32, 32\]"),  # batch
        (np.zeros((2, 3, 64, 64), np.float32), r"expected \[2, 3, 32, 32\]"),  # size
    ],
)
def test_engine_takes_the_batch_and_size_of_its_metadata(
    tmp_path: Path, batch: np.ndarray, message: str
) -> None:
    model = tmp_path / "m.rknn"
    write_metadata(model, ModelMetadata(imgsz=IMGSZ, batch=2, names=NAMES))
    engine = RknnEngine(model, runtime=ReplayRuntime(images(2), head(2, []), batch=2))
    with pytest.raises(EngineError, match=message):
        engine.run(batch)


@pytest.mark.parametrize(
    ("names", "output", "message"),
    [
        (NAMES, np.zeros((1, 300, 6), np.float32), r"\[1, 300, 6\], expected the raw head"),
        (["only"], head(1, []), r"\[1, 7, 16\], expected the raw head \[1, 5, anchors\]"),
    ],
)
def test_output_that_is_not_the_raw_head_is_refused(
    tmp_path: Path, names: list[str], output: np.ndarray, message: str
) -> None:
    inputs = images(1)
    engine = RknnEngine(
        tmp_path / "m.rknn",
        metadata=ModelMetadata(imgsz=IMGSZ, batch=1, names=names),
        runtime=ReplayRuntime(inputs, output, batch=1),
    )
    with pytest.raises(EngineError, match=message):
        engine.run(as_input(inputs))


def test_no_output_is_an_engine_error(tmp_path: Path) -> None:
    class Silent(ReplayRuntime):
        def inference(self, inputs: list[np.ndarray], data_format: list[str]) -> None:  # type: ignore[override]
            return None

    metadata = ModelMetadata(imgsz=IMGSZ, batch=1, names=NAMES)
    engine = RknnEngine(
        b"model", metadata=metadata, runtime=Silent(images(1), head(1, []), batch=1)
    )
    with pytest.raises(EngineError, match="the NPU returned no output"):
        engine.run(as_input(images(1)))


def test_without_metadata_the_export_defaults_are_assumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = ReplayRuntime(images(1), head(1, []), batch=1)
    engine = RknnEngine(tmp_path / "azaion.rknn", runtime=runtime)
    assert (engine.input_size, engine.batch_size, len(engine.class_names)) == ((1280, 1280), 1, 80)
    assert "no model metadata" in caplog.text and "azaion.rknn.json" in caplog.text


def test_bad_metadata_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "azaion.rknn"
    model.write_bytes(b"RKNN")
    (tmp_path / "azaion.rknn.json").write_text("{")
    with pytest.raises(EngineError, match="not a model metadata file"):
        load_engine(model)


def test_without_the_board_runtime_the_metadata_is_read_first(tmp_path: Path) -> None:
    if importlib.util.find_spec("rknnlite") is not None:
        pytest.skip("rknn-toolkit-lite2 is installed here; this checks the message where it is not")
    model = tmp_path / "azaion.rknn"
    model.write_bytes(b"RKNN")
    write_metadata(model, ModelMetadata(imgsz=IMGSZ, batch=1, names=NAMES))
    with pytest.raises(EngineError, match="rknn-toolkit-lite2 is not installed"):
        load_engine(model)


def test_rknn_runs_the_tiled_path_like_onnx_runtime(
    detector, onnx_engine, video_100: Path, tmp_path: Path
) -> None:
    """`RknnEngine` through the one tiling code: the board runtime is the stand-in that replays
    the raw head of the graph the RKNN is converted from (`export_rknn_onnx`, run by ONNX
    Runtime) for exactly the NHWC uint8 tile batches the engine hands it; the tiled detections
    equal those of the NMS-in-graph ONNX model on ONNX Runtime."""
    import cv2
    import onnxruntime as ort

    from azaion_training.export.rknn import export_rknn_onnx
    from azaion_training.infer.frames import Packer, detect_frames
    from azaion_training.infer.tiles import TilePlan

    from .conftest import MODEL_BATCH, MODEL_IMGSZ

    capture = cv2.VideoCapture(str(video_100))
    frame = capture.read()[1]  # 320x240
    capture.release()
    plan = TilePlan(mode="fixed", tile_hw=(MODEL_IMGSZ, MODEL_IMGSZ))
    packer = Packer(onnx_engine, plan, MODEL_BATCH)
    batches = [*packer.add(0, frame), *packer.flush()]  # 9 tiles + the whole frame, by 4
    inputs = np.concatenate(
        [np.clip(np.rint(b.input.transpose(0, 2, 3, 1) * 255), 0, 255) for b in batches]
    ).astype(np.uint8)
    raw_graph = ort.InferenceSession(
        str(export_rknn_onnx(detector.weights, tmp_path / "raw.onnx", imgsz=MODEL_IMGSZ))
    )
    name = raw_graph.get_inputs()[0].name
    outputs = np.concatenate(
        [
            raw_graph.run(None, {name: (image.transpose(2, 0, 1)[None] / 255).astype(np.float32)})[
                0
            ]
            for image in inputs
        ]
    )
    model = tmp_path / "azaion.rk3588.rknn"
    metadata = ModelMetadata(imgsz=MODEL_IMGSZ, batch=MODEL_BATCH, names=onnx_engine.class_names)
    write_metadata(model, metadata)
    runtime = ReplayRuntime(inputs, outputs, batch=MODEL_BATCH)
    engine = RknnEngine(model, runtime=runtime)

    (got,) = detect_frames(engine, [frame], conf=0.3, iou=0.3, tiles=plan)
    (expected,) = detect_frames(onnx_engine, [frame], conf=0.3, iou=0.3, tiles=plan)

    assert runtime.calls == len(batches) == 3  # every batch went through the "board"
    assert len(expected) >= 2 and len(got) == len(expected)
    order_g, order_e = np.argsort(got.xyxy[:, 0]), np.argsort(expected.xyxy[:, 0])
    assert got.class_id[order_g].tolist() == expected.class_id[order_e].tolist()
    np.testing.assert_allclose(got.xyxy[order_g], expected.xyxy[order_e], atol=1.0)
