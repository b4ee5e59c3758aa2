from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from azaion_training.errors import ExportError
from azaion_training.export.rknn import (
    FP16_TOLERANCE,
    INT8_TOLERANCE,
    WORKER,
    Agreement,
    compare_detections,
    convert_onnx_to_rknn,
    export_rknn,
    letterboxed_batch,
    normalise_box_rows,
)
from azaion_training.export.sample import form_data_sample
from tests.export.conftest import IMGSZ, TinyModel

# --- comparing two detectors ---------------------------------------------------------------


def dets(*rows: tuple[float, ...]) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 6)


@pytest.mark.parametrize(
    ("reference", "candidate", "boxes", "unmatched", "min_iou", "confidence"),
    [
        (dets(), dets(), 0, 0, 1.0, 0.0),  # nothing on either side
        (dets((0, 0, 10, 10, 0.9, 1)), dets((0, 0, 10, 10, 0.9, 1)), 2, 0, 1.0, 0.0),  # equal
        (dets((0, 0, 10, 10, 0.9, 1)), dets((1, 0, 11, 10, 0.8, 1)), 2, 0, 9 / 11, 0.1),  # off
        (dets((0, 0, 10, 10, 0.9, 1)), dets(), 1, 1, 1.0, 0.0),  # missed by the candidate
        (dets(), dets((0, 0, 10, 10, 0.9, 1)), 1, 1, 1.0, 0.0),  # invented by the candidate
        (dets((0, 0, 10, 10, 0.9, 1)), dets((0, 0, 10, 10, 0.9, 2)), 2, 2, 1.0, 0.0),  # class
        (dets((0, 0, 10, 10, 0.9, 1)), dets((20, 20, 30, 30, 0.9, 1)), 2, 2, 1.0, 0.0),  # place
        (dets((0, 0, 10, 10, 0.28, 1)), dets(), 0, 0, 1.0, 0.0),  # not confident: not required
        (dets((0, 0, 10, 10, 0.9, 1)), dets((0, 0, 10, 10, 0.22, 1)), 1, 0, 1.0, 0.68),  # weak
    ],
)
def test_compare_detections(
    reference: np.ndarray,
    candidate: np.ndarray,
    boxes: int,
    unmatched: int,
    min_iou: float,
    confidence: float,
) -> None:
    agreement = compare_detections([reference], [candidate], confident=0.3)
    assert agreement.boxes == boxes
    assert agreement.unmatched == unmatched
    assert agreement.min_iou == pytest.approx(min_iou)
    assert agreement.max_confidence_difference == pytest.approx(confidence, abs=1e-6)


@pytest.mark.parametrize(
    ("agreement", "fp16", "int8"),
    [
        (Agreement(10, 0, 0.99, 0.01), True, True),  # close
        (Agreement(10, 0, 0.85, 0.06), False, True),  # quantisation-sized differences
        (Agreement(10, 1, 0.99, 0.01), False, False),  # a box is missing
        (Agreement(10, 0, 0.60, 0.01), False, False),  # boxes moved
        (Agreement(10, 0, 0.99, 0.30), False, False),  # confidences moved
    ],
)
def test_tolerances(agreement: Agreement, fp16: bool, int8: bool) -> None:
    assert agreement.holds(FP16_TOLERANCE) is fp16
    assert agreement.holds(INT8_TOLERANCE) is int8


# --- the ONNX for RKNN ---------------------------------------------------------------------


def test_normalise_box_rows_scales_only_the_boxes(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["images"], ["output0"])
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [node],
        "head",
        [value("images", TensorProto.FLOAT, [1, 6, 5])],
        [value("output0", TensorProto.FLOAT, [1, 6, 5])],
    )
    path = tmp_path / "head.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), path)
    normalise_box_rows(path, imgsz=64)
    raw = np.random.default_rng(0).uniform(0, 64, (1, 6, 5)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(["output0"], {"images": raw})
    np.testing.assert_allclose(out[:, :4], raw[:, :4] / 64, rtol=1e-6)
    np.testing.assert_array_equal(out[:, 4:], raw[:, 4:])


# --- the worker protocol -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "code", "stage"),
    [
        ("not json", 2, "request"),  # not a request
        (json.dumps({"onnx": "m.onnx"}), 2, "request"),  # fields missing
        (
            json.dumps({"onnx": "m.onnx", "out": "m.rknn", "platform": "rk3588", "batch": 1}),
            3,
            "import",
        ),  # a Python without the toolkit (the main environment)
    ],
)
def test_worker_protocol_errors(request_text: str, code: int, stage: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-I", str(WORKER)],
        input=request_text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == code
    (line,) = finished.stdout.splitlines()  # exactly one line: the result
    result = json.loads(line)
    assert result["ok"] is False and result["stage"] == stage and result["error"]


def test_missing_environment_names_the_setup_script(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"does not exist: create it with scripts/setup_rknn.sh"):
        convert_onnx_to_rknn(
            tmp_path / "m.onnx", tmp_path / "m.rknn", platform="rk3588", batch=1, venv=tmp_path
        )


def test_worker_failure_becomes_one_export_error(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)  # a Python without the toolkit
    with pytest.raises(ExportError, match=r"failed at import \(exit 3\)"):
        convert_onnx_to_rknn(
            tmp_path / "m.onnx", tmp_path / "m.rknn", platform="rk3588", batch=1, venv=venv
        )


def test_letterboxed_batch_fills_the_last_batch(tiny_images: list[Path]) -> None:
    batch = letterboxed_batch(tiny_images[:3], imgsz=32, batch=2)
    assert batch.shape == (4, 32, 32, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[3], batch[2])


@pytest.fixture
def tiny_images(tmp_path: Path) -> list[Path]:
    import cv2

    paths = []
    for index in range(3):
        path = tmp_path / f"{index}.png"
        cv2.imwrite(str(path), np.full((20, 40, 3), 60 * index, np.uint8))
        paths.append(path)
    return paths


# --- the real conversion (needs the RKNN environment) ---------------------------------------

AGREEMENT = re.compile(r"(\d+) confident boxes, 0 unmatched, worst IoU ([\d.]+)")


@pytest.mark.slow
def test_int8_rknn_agrees_with_onnx_runtime(
    tiny_model: TinyModel, rknn_venv: Path, tmp_path: Path
) -> None:
    from azaion_training.export.sample import write_sample_list

    calibration = write_sample_list(
        form_data_sample(tiny_model.dataset, 32), tmp_path / "dataset.txt"
    )
    result = export_rknn(
        tiny_model.weights,
        tmp_path / "int8.rknn",
        imgsz=IMGSZ,
        batch=1,
        dataset=calibration,
        venv=rknn_venv,
        verify=form_data_sample(tiny_model.dataset / "valid", 8, seed=1),
    )
    assert result.path.read_bytes()[:4] == b"RKNN"
    assert result.agreement is not None
    assert result.agreement.boxes >= 8  # real boxes were compared, not an empty set
    assert result.agreement.holds(INT8_TOLERANCE)
    assert result.metadata.build["precision"] == "int8"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dataset.txt",
        "int8.rknn",
        "int8.rknn.json",
    ]


@pytest.mark.slow
def test_exported_rknn_and_its_metadata_drive_the_engine_like_onnx_runtime(
    tiny_model: TinyModel, rknn_venv: Path, tmp_path: Path
) -> None:
    """The simulator's raw outputs, replayed as the board runtime, go through `RknnEngine`'s own
    decoding and give ONNX Runtime's detections (the NMS-in-graph ONNX) within the FP16 check's
    tolerance; the batch (2) and size come from the metadata file."""
    from azaion_training.export.onnx import export_onnx
    from azaion_training.infer.load import load_engine
    from azaion_training.infer.metadata import read_metadata
    from azaion_training.infer.rknn import RknnEngine
    from tests.infer.helpers import ReplayRuntime

    batch = 2
    verify = form_data_sample(tiny_model.dataset / "valid", 6, seed=1)
    result = export_rknn(
        tiny_model.weights,
        tmp_path / "azaion.rk3588.rknn",
        imgsz=IMGSZ,
        batch=batch,
        venv=rknn_venv,
        verify=verify,
    )
    metadata = read_metadata(result.path)
    assert metadata == result.metadata
    assert (metadata.imgsz, metadata.batch, metadata.build["precision"]) == (IMGSZ, 2, "fp16")
    assert metadata.names[15] == "Building"
    assert result.simulated is not None

    inputs = letterboxed_batch(verify, imgsz=IMGSZ, batch=batch)
    runtime = ReplayRuntime(inputs, result.simulated, batch=batch)
    engine = RknnEngine(result.path, runtime=runtime)
    onnx = load_engine(
        export_onnx(tiny_model.weights, tmp_path / "ref.onnx", imgsz=IMGSZ, batch=batch)
    )
    rknn_rows, onnx_rows = [], []
    for start in range(0, len(inputs), batch):
        images = (inputs[start : start + batch].transpose(0, 3, 1, 2) / 255).astype(np.float32)
        rknn_rows.extend(engine.run(images))
        onnx_rows.extend(onnx.run(images))
    assert runtime.calls == len(inputs) // batch  # every batch went through the "board"
    found = [rows[rows[:, 4] > 0] for rows in rknn_rows]
    expected = [rows[rows[:, 4] > 0] for rows in onnx_rows]
    agreement = compare_detections(expected, found, confident=0.3)
    assert agreement.boxes >= 6  # real boxes were compared
    assert agreement.holds(FP16_TOLERANCE), agreement
