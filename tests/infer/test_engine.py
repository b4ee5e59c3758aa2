from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from azaion_training.classes import ClassTable
from azaion_training.errors import EngineError
from azaion_training.infer.engine import names_from_metadata
from azaion_training.infer.load import engine_kind, load_engine
from azaion_training.infer.onnx import OnnxEngine
from azaion_training.infer.tensorrt import split_engine_header


def tiny_onnx(
    output_shape: list[int],
    *,
    input_shape: tuple[int | str, ...] = (4, 3, 32, 32),
    metadata: dict[str, str] | None = None,
) -> bytes:
    """A graph that ignores its image input and returns a constant tensor of ``output_shape``."""
    import onnx
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [len(output_shape)], output_shape)
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.25])
    node = helper.make_node("ConstantOfShape", ["shape"], ["output0"], value=value)
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, output_shape)],
        initializer=[shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, text in (metadata or {}).items():
        model.metadata_props.add(key=key, value=text)
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("azaion.onnx", "onnx"),
        ("AZAION.ONNX", "onnx"),  # case does not matter
        ("azaion.cc_8.9_sm_128.engine", "engine"),  # the GPU-specific engine name of SPEC 8
        ("azaion.rknn", "rknn"),
    ],
)
def test_engine_kind_by_suffix(name: str, kind: str) -> None:
    assert engine_kind(name) == kind


@pytest.mark.parametrize("name", ["azaion.pt", "azaion", "video.mp4", "model.onnx.big"])
def test_unknown_suffix_is_one_clear_error(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(b"x")
    with pytest.raises(
        EngineError, match=r"unknown model type .*expected \.onnx, \.engine, \.rknn"
    ):
        load_engine(path)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        load_engine(tmp_path / "azaion.onnx")


def test_bytes_need_a_kind() -> None:
    with pytest.raises(EngineError, match="kind is required"):
        load_engine(b"\x00")


def test_onnx_from_bytes_runs_and_reads_the_metadata(tmp_path: Path) -> None:
    data = tiny_onnx([4, 300, 6], metadata={"names": "{0: 'Tank', 1: 'Truck'}"})
    engine = load_engine(data, kind="onnx")
    assert engine.name == "onnxruntime/CPUExecutionProvider"
    assert (engine.input_size, engine.batch_size) == ((32, 32), 4)
    assert engine.class_names == ["Tank", "Truck"]
    rows = engine.run(np.zeros((4, 3, 32, 32), np.float32))
    assert rows.shape == (4, 300, 6) and rows.dtype == np.float32
    engine.close()


def test_onnx_without_names_falls_back_to_the_class_table(tmp_path: Path) -> None:
    path = tmp_path / "plain.onnx"
    path.write_bytes(tiny_onnx([4, 300, 6]))
    engine = load_engine(path)
    assert engine.class_names == ClassTable.default().names


@pytest.mark.parametrize(
    "output_shape",
    [
        [4, 84, 8400],  # raw head: exported without NMS
        [4, 300, 7],  # one column too many
        [4, 1800],  # flattened
    ],
)
def test_onnx_with_the_wrong_output_shape_is_refused(output_shape: list[int]) -> None:
    with pytest.raises(EngineError, match=r"output is .*expected \[B, 300, 6\]"):
        OnnxEngine(tiny_onnx(output_shape))


def test_onnx_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf at all")
    with pytest.raises(EngineError, match="ONNX Runtime cannot load"):
        load_engine(path)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((3, 3, 32, 32), np.float32), "expected \\[4, 3, 32, 32\\]"),  # short batch
        (np.zeros((4, 3, 16, 16), np.float32), "expected \\[4, 3, 32, 32\\]"),  # other size
        (np.zeros((4, 3, 32, 32), np.float64), "float32"),  # other type
    ],
)
def test_onnx_checks_its_input(batch: np.ndarray, message: str) -> None:
    engine = OnnxEngine(tiny_onnx([4, 300, 6]))
    with pytest.raises(EngineError, match=message):
        engine.run(batch)


def test_dynamic_input_size_comes_from_the_metadata() -> None:
    data = tiny_onnx(
        [4, 300, 6], input_shape=("batch", 3, "h", "w"), metadata={"imgsz": "[64, 96]"}
    )
    engine = OnnxEngine(data)
    assert (engine.input_size, engine.batch_size) == ((64, 96), None)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"names": "{0: 'A', 2: 'C'}"}, ["A", "Class-1", "C"]),  # Ultralytics' repr, a gap
        ({"names": {"0": "A", "1": "B"}}, ["A", "B"]),  # JSON header: string keys
        ({"names": ["A", "B"]}, ["A", "B"]),  # a plain list
        ({"names": "not python"}, ClassTable.default().names),  # unreadable: the table
        ({}, ClassTable.default().names),  # none: the table
    ],
)
def test_names_from_metadata(metadata: dict, expected: list[str]) -> None:
    assert names_from_metadata(metadata) == expected


@pytest.mark.parametrize(
    ("data", "metadata", "rest"),
    [
        # Ultralytics' header: 4-byte little-endian length, then JSON
        (
            len(b'{"imgsz": [640, 640]}').to_bytes(4, "little") + b'{"imgsz": [640, 640]}' + b"ENG",
            {"imgsz": [640, 640]},
            b"ENG",
        ),
        # no header: the bytes are the engine
        (
            b"\x10\x00\x00\x00not json at all, engine bytes",
            {},
            b"\x10\x00\x00\x00not json at all, engine bytes",
        ),
        # a length that overruns the data is not a header
        (b"\xff\xff\xff\x00abc", {}, b"\xff\xff\xff\x00abc"),
    ],
)
def test_split_engine_header(data: bytes, metadata: dict, rest: bytes) -> None:
    assert split_engine_header(data) == (metadata, rest)


def test_tensorrt_without_its_runtime_is_one_clear_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here; this checks the message where it is not")
    path = tmp_path / "azaion.engine"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(EngineError, match="TensorRT is not installed"):
        load_engine(path)


def test_rknn_without_its_runtime_is_one_clear_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("rknnlite") is not None:
        pytest.skip("rknn-toolkit-lite2 is installed here; this checks the message where it is not")
    path = tmp_path / "azaion.rknn"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(EngineError, match="rknn-toolkit-lite2 is not installed"):
        load_engine(path)
