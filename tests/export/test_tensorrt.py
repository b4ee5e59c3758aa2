from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from azaion_training.errors import ExportError
from azaion_training.export.tensorrt import (
    GpuDescription,
    calibration_batches,
    check_tensorrt_available,
    decide_engine,
    engine_file_name,
    engine_gpu,
    existing_engines,
    export_engine,
    has_fast_fp16,
    workspace_bytes,
)
from tests.export.conftest import IMGSZ, TinyModel

RTX_3090 = GpuDescription(major=8, minor=6, multiprocessors=82)
H100 = GpuDescription(major=9, minor=0, multiprocessors=132)
ORIN = GpuDescription(major=8, minor=7, multiprocessors=16)


@pytest.mark.parametrize(
    ("gpu", "name"),
    [
        (RTX_3090, "azaion.cc_8.6_sm_82.engine"),  # desktop Ampere
        (H100, "azaion.cc_9.0_sm_132.engine"),  # three-digit multiprocessor count
        (ORIN, "azaion.cc_8.7_sm_16.engine"),  # Jetson
    ],
)
def test_engine_file_name(gpu: GpuDescription, name: str) -> None:
    assert engine_file_name(gpu) == name
    assert engine_gpu(name) == gpu


def test_gpu_description_from_torch_properties() -> None:
    properties = types.SimpleNamespace(
        major=8, minor=9, multi_processor_count=128, name="NVIDIA GeForce RTX 4090", total_memory=1
    )
    gpu = GpuDescription.from_properties(properties)
    assert engine_file_name(gpu) == "azaion.cc_8.9_sm_128.engine"
    assert gpu.name == "NVIDIA GeForce RTX 4090"


@pytest.mark.parametrize(
    "name",
    [
        "azaion.onnx",  # another format
        "azaion.cc_8.6.engine",  # no multiprocessor count
        "model.cc_8.6_sm_82.engine",  # another stem
        "azaion.cc_8.6_sm_82.engine.tmp",  # a temporary file
    ],
)
def test_other_names_are_not_engines(name: str) -> None:
    assert engine_gpu(name) is None


FOLDER = Path("/models")


@pytest.mark.parametrize(
    ("engines", "model_mtime", "action", "reason"),
    [
        ({}, 100.0, "build", "none here"),  # first export
        (
            {"azaion.cc_9.0_sm_132.engine": 200.0},
            100.0,
            "build",
            "azaion.cc_9.0_sm_132",
        ),  # other GPU
        ({"azaion.cc_8.6_sm_84.engine": 200.0}, 100.0, "build", "other GPUs"),  # same cc, other SMs
        (
            {"azaion.cc_8.6_sm_82.engine": 200.0},
            100.0,
            "reuse",
            "matches",
        ),  # ours, newer than model
        ({"azaion.cc_8.6_sm_82.engine": 100.0}, 100.0, "reuse", "matches"),  # ours, same time
        ({"azaion.cc_8.6_sm_82.engine": 50.0}, 100.0, "build", "older than the model"),  # stale
        (
            {"azaion.cc_8.6_sm_82.engine": 200.0, "azaion.cc_9.0_sm_132.engine": 200.0},
            100.0,
            "reuse",
            "matches",
        ),  # ours among others
    ],
)
def test_decide_engine(
    engines: dict[str, float], model_mtime: float, action: str, reason: str
) -> None:
    decision = decide_engine(FOLDER, RTX_3090, engines=engines, model_mtime=model_mtime)
    assert decision.action == action
    assert decision.path == FOLDER / "azaion.cc_8.6_sm_82.engine"
    assert reason in decision.reason


def test_existing_engines_lists_only_engine_files(tmp_path: Path) -> None:
    for name in ("azaion.cc_8.6_sm_82.engine", "azaion.cc_9.0_sm_132.engine", "azaion.onnx"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "azaion.cc_7.5_sm_40.engine").mkdir()
    assert sorted(existing_engines(tmp_path)) == [
        "azaion.cc_8.6_sm_82.engine",
        "azaion.cc_9.0_sm_132.engine",
    ]
    assert existing_engines(tmp_path / "missing") == {}


@pytest.mark.parametrize(
    ("free", "fraction", "expected"),
    [
        (8 << 30, 0.5, 4 << 30),  # the default half
        (8 << 30, 1.0, 8 << 30),  # all of it
        (1000, 0.25, 250),  # small numbers stay exact
        (1001, 0.5, 500),  # rounded down
    ],
)
def test_workspace_bytes(free: int, fraction: float, expected: int) -> None:
    assert workspace_bytes(free, fraction) == expected


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_workspace_fraction_out_of_range(fraction: float) -> None:
    with pytest.raises(ExportError, match="workspace fraction"):
        workspace_bytes(1 << 30, fraction)


@pytest.mark.parametrize(
    ("major", "minor", "fast"),
    [
        (5, 2, False),  # Maxwell desktop
        (5, 3, True),  # Jetson TX1
        (6, 1, False),  # Pascal consumer: FP16 at 1/64 rate
        (6, 0, True),  # P100
        (7, 5, True),  # Turing
        (9, 0, True),  # Hopper
    ],
)
def test_has_fast_fp16(major: int, minor: int, fast: bool) -> None:
    assert has_fast_fp16(GpuDescription(major=major, minor=minor, multiprocessors=1)) is fast


@pytest.mark.parametrize(
    ("count", "batch", "sizes"),
    [
        (8, 4, [4, 4]),  # exact
        (9, 4, [4, 4]),  # the partial last batch is dropped
        (3, 4, []),  # not one full batch
        (3, 1, [1, 1, 1]),  # batch 1
    ],
)
def test_calibration_batches(count: int, batch: int, sizes: list[int]) -> None:
    images = [Path(f"{i}.jpg") for i in range(count)]
    batches = calibration_batches(images, batch=batch)
    assert [len(b) for b in batches] == sizes
    assert [p for b in batches for p in b] == images[: sum(sizes)]


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
def test_real_engine_build_reuse_and_run(tiny_model: TinyModel, tmp_path: Path) -> None:
    import onnxruntime as ort
    import tensorrt as trt
    import torch

    from azaion_training.export.onnx import export_onnx
    from azaion_training.export.sample import form_data_sample, load_letterboxed
    from azaion_training.export.tensorrt import current_gpu

    models = tmp_path / "models"
    engine = export_engine(tiny_model.weights, models, imgsz=IMGSZ, batch=2, half=False)
    assert engine.name == engine_file_name(current_gpu())
    built_at = engine.stat().st_mtime_ns
    assert export_engine(tiny_model.weights, models, imgsz=IMGSZ, batch=2) == engine
    assert engine.stat().st_mtime_ns == built_at  # reused, not rebuilt

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    loaded = runtime.deserialize_cuda_engine(engine.read_bytes())
    names = [loaded.get_tensor_name(i) for i in range(loaded.num_io_tensors)]
    assert names == ["images", "output0"]
    assert tuple(loaded.get_tensor_shape("output0")) == (2, 300, 6)
    paths = form_data_sample(tiny_model.dataset / "valid", 2)
    host = np.stack([load_letterboxed(p, IMGSZ) for p in paths]).transpose(0, 3, 1, 2) / 255
    images = torch.from_numpy(host.astype(np.float32)).cuda()
    output = torch.empty((2, 300, 6), device="cuda")
    context = loaded.create_execution_context()
    context.set_tensor_address("images", images.data_ptr())
    context.set_tensor_address("output0", output.data_ptr())
    stream = torch.cuda.Stream()
    assert context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()

    onnx = export_onnx(tiny_model.weights, tmp_path / "ref.onnx", imgsz=IMGSZ, batch=2)
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    (reference,) = session.run(None, {"images": host.astype(np.float32)})
    confident = reference[..., 4] > 0.3
    assert confident.any()  # the comparison is about real boxes
    np.testing.assert_allclose(output.cpu().numpy()[confident], reference[confident], atol=0.5)
