from __future__ import annotations

import json
from pathlib import Path

import pytest

from azaion_training.errors import EngineError
from azaion_training.infer.metadata import (
    ModelMetadata,
    metadata_path,
    read_metadata,
    write_metadata,
)


def test_metadata_file_sits_beside_the_model(tmp_path: Path) -> None:
    model = tmp_path / "azaion.rk3588.rknn"
    assert metadata_path(model) == tmp_path / "azaion.rk3588.rknn.json"
    assert read_metadata(model) is None  # none written yet
    written = ModelMetadata(imgsz=640, batch=4, names=["a", "b"], build={"precision": "int8"})
    assert write_metadata(model, written) == metadata_path(model)
    assert read_metadata(model) == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["azaion.rk3588.rknn.json"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a model metadata file"),
        ("[]", "not a model metadata file"),  # JSON, but not an object
        (json.dumps({"imgsz": 640, "batch": 1}), "not a model metadata file"),  # names missing
        (json.dumps({"imgsz": 0, "batch": 1, "names": []}), "positive integers"),
        (json.dumps({"imgsz": "640", "batch": 1, "names": []}), "positive integers"),
        (json.dumps({"imgsz": 640, "batch": True, "names": []}), "positive integers"),
        (json.dumps({"imgsz": 640, "batch": 1, "names": [1]}), "list of strings"),
        (json.dumps({"imgsz": 640, "batch": 1, "names": [], "build": []}), "positive"),
    ],
)
def test_bad_metadata_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    model = tmp_path / "m.rknn"
    metadata_path(model).write_text(text)
    with pytest.raises(EngineError, match=message) as caught:
        read_metadata(model)
    assert str(metadata_path(model)) in str(caught.value)


def test_metadata_carries_the_tiling_and_old_files_get_the_defaults(tmp_path: Path) -> None:
    model = tmp_path / "azaion.rk3588.rknn"
    tiled = {"tiles": "640x640", "overlap": 0.25, "factor": 2.0}
    write_metadata(model, ModelMetadata(imgsz=640, batch=1, names=["a"], tiles=tiled))
    assert json.loads(metadata_path(model).read_text())["tiles"] == tiled
    assert read_metadata(model).tiles == tiled  # type: ignore[union-attr]

    metadata_path(model).write_text(json.dumps({"imgsz": 640, "batch": 1, "names": ["a"]}))
    assert read_metadata(model).tiles == {"tiles": "auto", "overlap": 0.2, "factor": 1.5}  # type: ignore[union-attr]

    body = {"imgsz": 640, "batch": 1, "names": ["a"], "tiles": {"tiles": "big"}}
    metadata_path(model).write_text(json.dumps(body))
    with pytest.raises(EngineError, match="tiles"):
        read_metadata(model)
