from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from azaion_training.errors import ExportError
from azaion_training.export.tensorrt import (
    BuildRecord,
    CalibrationFeed,
    GpuDescription,
    calibration_batches,
    check_tensorrt_available,
    decide_engine,
    engine_file_name,
    engine_gpu,
    engine_precision,
    existing_engines,
    export_engine,
    file_sha256,
    has_fast_fp16,
    keep_head_sigmoid_in_fp32,
    workspace_bytes,
)
from azaion_training.infer.metadata import ModelMetadata, write_metadata
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
RECORD = BuildRecord(tensorrt="10.9.0", imgsz=1280, batch=4, precision="fp16", source_sha256="ab")
OURS = "azaion.cc_8.6_sm_82.engine"


@pytest.mark.parametrize(
    ("engines", "action", "reason"),
    [
        ({}, "build", "none here"),  # first export
        ({"azaion.cc_9.0_sm_132.engine": RECORD}, "build", "azaion.cc_9.0_sm_132"),  # other GPU
        ({"azaion.cc_8.6_sm_84.engine": RECORD}, "build", "other GPUs"),  # same cc, other SMs
        ({OURS: None}, "build", "has no build record"),  # an engine of unknown making
        ({OURS: RECORD}, "reuse", "built by TensorRT 10.9.0 from this model at imgsz 1280"),
        (
            {OURS: replace(RECORD, tensorrt="10.3.0")},
            "build",
            "tensorrt 10.3.0 -> 10.9.0",
        ),  # TensorRT upgraded: plans do not carry over
        ({OURS: replace(RECORD, imgsz=640)}, "build", "imgsz 640 -> 1280"),
        ({OURS: replace(RECORD, batch=1)}, "build", "batch 1 -> 4"),
        ({OURS: replace(RECORD, precision="int8")}, "build", "precision int8 -> fp16"),
        ({OURS: replace(RECORD, source_sha256="cd")}, "build", "source_sha256 cd -> ab"),
        (
            {OURS: replace(RECORD, batch=1, precision="fp32")},
            "build",
            "batch 1 -> 4, precision fp32 -> fp16",
        ),  # every change is named
        ({OURS: RECORD, "azaion.cc_9.0_sm_132.engine": None}, "reuse", "built by"),  # among others
    ],
)
def test_decide_engine(engines: dict[str, BuildRecord | None], action: str, reason: str) -> None:
    decision = decide_engine(FOLDER, RTX_3090, engines=engines, wanted=RECORD)
    assert decision.action == action
    assert decision.path == FOLDER / OURS
    assert reason in decision.reason


def test_build_record_round_trips_through_the_metadata_file(tmp_path: Path) -> None:
    gpu = replace(RTX_3090, name="NVIDIA GeForce RTX 3090")
    metadata = RECORD.metadata(["car", "tank"], gpu)
    assert metadata.build["gpu"] == "azaion.cc_8.6_sm_82 NVIDIA GeForce RTX 3090"
    write_metadata(tmp_path / OURS, metadata)
    (tmp_path / OURS).write_bytes(b"plan")
    assert existing_engines(tmp_path) == {OURS: RECORD}


@pytest.mark.parametrize(
    "build",
    [
        {},  # no record at all
        {"format": "rknn", "tensorrt": "10.9.0", "precision": "fp16", "source_sha256": "ab"},
        {"format": "engine", "precision": "fp16", "source_sha256": "ab"},  # version missing
        {"format": "engine", "tensorrt": 10, "precision": "fp16", "source_sha256": "ab"},
    ],
)
def test_an_incomplete_record_is_no_record(build: dict) -> None:
    metadata = ModelMetadata(imgsz=1280, batch=4, names=["car"], build=build)
    assert BuildRecord.from_metadata(metadata) is None


def test_existing_engines_lists_only_engine_files(tmp_path: Path) -> None:
    for name in ("azaion.cc_8.6_sm_82.engine", "azaion.cc_9.0_sm_132.engine", "azaion.onnx"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "azaion.cc_7.5_sm_40.engine").mkdir()
    (tmp_path / "azaion.cc_9.0_sm_132.engine.json").write_text("{")  # unreadable: no record
    assert existing_engines(tmp_path) == {
        "azaion.cc_8.6_sm_82.engine": None,
        "azaion.cc_9.0_sm_132.engine": None,
    }
    assert existing_engines(tmp_path / "missing") == {}


@pytest.mark.parametrize(
    ("gpu", "half", "int8", "precision"),
    [
        (RTX_3090, True, False, "fp16"),  # the production default
        (RTX_3090, False, False, "fp32"),
        (GpuDescription(major=6, minor=1, multiprocessors=20), True, False, "fp32"),  # slow FP16
        (RTX_3090, True, True, "int8"),
        (RTX_3090, False, True, "int8"),
    ],
)
def test_engine_precision_is_what_is_built(
    gpu: GpuDescription, half: bool, int8: bool, precision: str
) -> None:
    assert engine_precision(gpu, half=half, int8=int8) == precision


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


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


def test_calibration_feed_gives_letterboxed_batches(tmp_path: Path) -> None:
    paths = _images(tmp_path, 5)
    feed = CalibrationFeed(paths, batch=2, imgsz=16)
    batches = [feed.next_batch(), feed.next_batch(), feed.next_batch()]
    assert [b.shape if b is not None else None for b in batches] == [(2, 16, 16, 3)] * 2 + [None]
    assert feed.failure is None


def test_a_calibration_image_that_does_not_load_is_named(tmp_path: Path) -> None:
    paths = _images(tmp_path, 4)
    paths[2].write_bytes(b"not an image")
    feed = CalibrationFeed(paths, batch=2, imgsz=16)
    assert feed.next_batch() is not None
    assert feed.next_batch() is None  # TensorRT hears "no more data"...
    assert feed.failure is not None and str(paths[2]) in feed.failure  # ...the build does not
    assert feed.next_batch() is None


def test_calibration_needs_one_full_batch(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="needs at least 4 images, got 3"):
        CalibrationFeed(_images(tmp_path, 3), batch=4, imgsz=16)


def _images(folder: Path, count: int) -> list[Path]:
    import cv2

    paths = [folder / f"{index}.png" for index in range(count)]
    for index, path in enumerate(paths):
        cv2.imwrite(str(path), np.full((12, 20, 3), 40 * index, np.uint8))
    return paths


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
