from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from azaion_training.errors import ExportError
from azaion_training.export.engines import (
    engine_file_name,
)
from azaion_training.export.tensorrt import (
    check_tensorrt_available,
    export_engine,
    keep_head_sigmoid_in_fp32,
)
from tests.export.conftest import IMGSZ, TinyModel


def test_only_the_heads_sigmoids_are_kept_in_fp32() -> None:
    trt = types.SimpleNamespace(
        LayerType=types.SimpleNamespace(ACTIVATION="activation", CONVOLUTION="convolution"),
        float32="float32",
    )

    class Layer:
        def __init__(self, name: str, kind: str) -> None:
            self.name, self.type, self.num_outputs = name, kind, 1
            self.precision, self.outputs = None, {}

        def set_output_type(self, index: int, dtype: str) -> None:
            self.outputs[index] = dtype

    layers = [
        Layer("/model/model.0/act/Sigmoid", "activation"),  # a SiLU in the backbone
        Layer("/model/model.23/cv3.0/cv3.0.0/act/Sigmoid", "activation"),  # a SiLU in the head
        Layer("/model/model.23/Sigmoid", "activation"),  # the class scores
        Layer("/model/model.23/cv2.0/cv2.0.2/Conv", "convolution"),
        Layer("/TopK", "topk"),  # the NMS tail
    ]
    network = types.SimpleNamespace(num_layers=len(layers), get_layer=layers.__getitem__)
    assert keep_head_sigmoid_in_fp32(trt, network) == 2
    pinned = [layer.name for layer in layers if layer.precision == "float32"]
    assert pinned == [layers[1].name, layers[2].name]
    assert all(layer.outputs == {0: "float32"} for layer in layers if layer.precision)


@pytest.mark.parametrize(
    ("has_tensorrt", "has_gpu", "expected"),
    [
        (False, False, ["tensorrt package is not installed", "no NVIDIA GPU"]),  # neither
        (False, True, ["tensorrt package is not installed"]),  # a GPU but no TensorRT
        (True, False, ["no NVIDIA GPU"]),  # TensorRT but no GPU
    ],
)
def test_missing_tensorrt_or_gpu_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, has_tensorrt: bool, has_gpu: bool, expected: list[str]
) -> None:
    import torch

    monkeypatch.setitem(
        sys.modules, "tensorrt", types.ModuleType("tensorrt") if has_tensorrt else None
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: has_gpu)
    with pytest.raises(ExportError) as caught:
        check_tensorrt_available()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("TensorRT engine export needs TensorRT and an NVIDIA GPU")
    assert all(part in message for part in expected)
    assert ("pip install 'azaion-training[tensorrt]'" in message) is (not has_tensorrt)


def test_both_present_passes_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    check_tensorrt_available()


def test_export_engine_here_fails_before_touching_anything(tmp_path: Path) -> None:
    if _tensorrt_and_gpu():
        pytest.skip("this machine has TensorRT and a GPU")
    with pytest.raises(ExportError, match="needs TensorRT and an NVIDIA GPU"):
        export_engine(tmp_path / "missing.pt", tmp_path / "out", imgsz=64, batch=1)
    assert not (tmp_path / "out").exists()


def _tensorrt_and_gpu() -> bool:
    import torch

    return importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _tensorrt_and_gpu(), reason="needs the tensorrt package and an NVIDIA GPU")
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_real_engine_gives_onnx_runtimes_detections(
    tiny_model: TinyModel, tmp_path: Path, precision: str
) -> None:
    """FP16 (the production default) and INT8 engines, run by `TensorRtEngine`, against ONNX
    Runtime on the same images; rows are matched by box, not by order (tied scores may swap)."""
    from azaion_training.export.onnx import export_onnx
    from azaion_training.export.rknn import FP16_TOLERANCE, INT8_TOLERANCE, compare_detections
    from azaion_training.export.sample import form_data_sample, load_letterboxed
    from azaion_training.infer.load import load_engine

    int8 = precision == "int8"
    calibration = form_data_sample(tiny_model.dataset / "train", 16) if int8 else []
    built = export_engine(
        tiny_model.weights, tmp_path, imgsz=IMGSZ, batch=2, int8=int8, calibration=calibration
    )
    assert built.metadata.build["precision"] == precision
    engine = load_engine(built.path)
    assert (engine.input_size, engine.batch_size) == ((IMGSZ, IMGSZ), 2)
    assert engine.class_names == built.metadata.names
    onnx = load_engine(export_onnx(tiny_model.weights, tmp_path / "r.onnx", imgsz=IMGSZ, batch=2))
    paths = form_data_sample(tiny_model.dataset / "valid", 8, seed=1)
    expected, found = [], []
    for start in range(0, len(paths), 2):
        images = np.stack([load_letterboxed(p, IMGSZ) for p in paths[start : start + 2]])
        batch = (images.transpose(0, 3, 1, 2) / 255).astype(np.float32)
        expected.extend(rows[rows[:, 4] > 0] for rows in onnx.run(batch))
        found.extend(rows[rows[:, 4] > 0] for rows in engine.run(batch))
    agreement = compare_detections(expected, found, confident=0.3)
    assert agreement.boxes >= 8  # real boxes were compared
    assert agreement.holds(INT8_TOLERANCE if int8 else FP16_TOLERANCE), agreement
    engine.close()


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _tensorrt_and_gpu(), reason="needs the tensorrt package and an NVIDIA GPU")
def test_real_engine_is_reused_only_when_built_alike(tiny_model: TinyModel, tmp_path: Path) -> None:
    from azaion_training.export.tensorrt import current_gpu

    request = {"imgsz": IMGSZ, "batch": 2, "half": True}
    first = export_engine(tiny_model.weights, tmp_path, **request)
    assert first.path.name == engine_file_name(current_gpu())
    assert first.decision.action == "build" and "none here" in first.decision.reason
    built_at = first.path.stat().st_mtime_ns
    again = export_engine(tiny_model.weights, tmp_path, **request)
    assert again.decision.action == "reuse" and "reused" in again.summary
    assert first.path.stat().st_mtime_ns == built_at  # not rebuilt
    for change, reason in (
        ({"batch": 1}, "batch 2 -> 1"),
        ({"imgsz": IMGSZ + 32}, f"imgsz {IMGSZ} -> {IMGSZ + 32}"),
        ({"half": False}, "precision fp16 -> fp32"),
    ):
        rebuilt = export_engine(tiny_model.weights, tmp_path, **{**request, **change})
        assert rebuilt.decision.action == "build" and reason in rebuilt.decision.reason
        assert "built" in rebuilt.summary
        request = {**request, **change}
    forced = export_engine(tiny_model.weights, tmp_path, **request, force=True)
    assert forced.decision.action == "build" and forced.decision.reason == "forced (--force)"
