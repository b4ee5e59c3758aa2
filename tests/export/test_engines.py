"""Engine file names, build records and the reuse decision (`export.engines`)."""

from __future__ import annotations

import types
from dataclasses import replace
from pathlib import Path

import pytest

from azaion_training.errors import ExportError
from azaion_training.export.engines import (
    BuildRecord,
    GpuDescription,
    decide_engine,
    engine_file_name,
    engine_gpu,
    engine_precision,
    existing_engines,
    file_sha256,
    has_fast_fp16,
    workspace_bytes,
)
from azaion_training.infer.metadata import ModelMetadata, write_metadata

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
