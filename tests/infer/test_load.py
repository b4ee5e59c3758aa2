"""The engine table: a new engine is one class plus one row."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from azaion_training.errors import EngineError
from azaion_training.infer.engine import COLUMNS, ROWS, Engine
from azaion_training.infer.load import ENGINES, EngineType, engine_kind, engines_help, load_engine


class FakeEngine:
    """An engine that finds nothing; registered by the fixture below."""

    name = "fake"
    input_size = (32, 32)
    batch_size = None
    class_names: ClassVar[list[str]] = ["Tank"]

    def __init__(self, model: Path | bytes) -> None:
        self.model = model

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.zeros((batch.shape[0], ROWS, COLUMNS), np.float32)

    def close(self) -> None:
        pass


@pytest.fixture
def fake_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    row = EngineType((".fake",), f"{__name__}:FakeEngine", "a test double")
    monkeypatch.setitem(ENGINES, "fake", row)  # the one registration
    return "fake"


def test_a_registered_engine_loads_by_suffix_and_by_kind(fake_kind: str, tmp_path: Path) -> None:
    model = tmp_path / "detector.FAKE"
    model.write_bytes(b"weights")
    assert engine_kind(model) == fake_kind
    engine = load_engine(model)
    assert isinstance(engine, FakeEngine) and isinstance(engine, Engine)
    assert engine.model == model
    from_bytes = load_engine(b"weights", kind=fake_kind)
    assert isinstance(from_bytes, FakeEngine) and from_bytes.model == b"weights"
    assert engine.run(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, ROWS, COLUMNS)


def test_a_registered_engine_is_listed_in_help_and_errors(fake_kind: str, tmp_path: Path) -> None:
    assert ".fake" in engines_help()
    from azaion_training.cli.infer import build_parser

    assert "a test double" in build_parser().format_help()
    with pytest.raises(EngineError, match=r"expected \.onnx, \.engine, \.rknn, \.fake"):
        engine_kind("model.pt")


def test_an_unknown_kind_is_one_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "azaion.onnx"
    model.write_bytes(b"x")
    with pytest.raises(EngineError, match="unknown engine kind 'tensorrt'"):
        load_engine(model, kind="tensorrt")


def test_every_row_names_an_importable_class() -> None:
    from azaion_training.registry import resolve

    for kind, row in ENGINES.items():
        assert row.suffixes == (f".{kind}",)  # the kind names the suffix and the export format
        assert isinstance(resolve(row.implementation), type)
