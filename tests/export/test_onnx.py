from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from azaion_training.errors import ExportError
from azaion_training.export.onnx import export_onnx


@pytest.fixture(scope="module")
def untrained_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    YOLO("yolo11n.yaml").save(str(path))
    return path


@pytest.mark.slow
def test_export_onnx_with_nms_gives_batch_300_6(untrained_weights: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    out = tmp_path / "models" / "azaion.onnx"
    assert export_onnx(untrained_weights, out, imgsz=64, batch=4) == out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [4, 3, 64, 64]
    (result,) = session.run(None, {"images": np.zeros((4, 3, 64, 64), np.float32)})
    assert result.shape == (4, 300, 6)
    metadata = session.get_modelmeta().custom_metadata_map
    assert "names" in metadata and metadata["imgsz"] == "[64, 64]"
    assert sorted(p.name for p in out.parent.iterdir()) == ["azaion.onnx"]  # nothing left over
    assert sorted(p.name for p in untrained_weights.parent.iterdir()) == ["tiny.pt"]


def test_missing_weights(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="do not exist"):
        export_onnx(tmp_path / "none.pt", tmp_path / "x.onnx", imgsz=64, batch=1)
