"""``azaion-export`` end to end on a tiny trained model (the fixtures of this folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from azaion_training.cli.export import main
from azaion_training.config import Settings
from azaion_training.fs import DataTree
from azaion_training.store.models import open_store
from tests.export.conftest import IMGSZ, TinyModel
from tests.helpers import run_cli


@pytest.mark.slow
def test_onnx_then_publish_lands_beside_the_current_model(
    tiny_model: TinyModel, settings: Settings, tree: DataTree, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(tiny_model.weights), "--root", str(tree.root), "--format", "onnx"]
    code = main([*args, "--imgsz", str(IMGSZ), "--batch", "2", "--publish"])
    assert code == 0
    onnx = tree.models / "azaion.onnx"
    assert onnx.is_file()
    captured = capsys.readouterr()
    assert f"wrote {onnx}" in captured.out
    assert "published azaion.onnx" in captured.out
    with open_store(settings, tree) as store:  # the local store: no API is configured
        assert store.fetch("azaion.onnx") == onnx.read_bytes()


@pytest.mark.slow
def test_rknn_export_and_simulator_check(
    tiny_model: TinyModel, rknn_venv: Path, settings: Settings, tree: DataTree, tmp_path: Path
) -> None:
    out = tmp_path / "edge"
    finished = run_cli(
        "export",
        *[str(tiny_model.weights), "--root", str(tree.root), "--format", "rknn"],
        *["--imgsz", str(IMGSZ), "--batch", "2", "--out", str(out)],
        *["--data", str(tiny_model.dataset / "valid"), "--verify", "8"],
        cwd=tmp_path,
        env={"AZAION_RKNN_VENV": str(rknn_venv)},
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    model = out / "azaion.rk3588.rknn"
    assert model.read_bytes()[:4] == b"RKNN"
    assert sorted(p.name for p in out.iterdir()) == [
        "azaion.rk3588.rknn",
        "azaion.rk3588.rknn.json",
    ]  # the model and its metadata, nothing left over
    assert "RKNN rk3588, FP16, batch 1" in finished.stdout  # --batch 2 is ONNX's and TensorRT's
    # Tolerance (FP16_TOLERANCE): every box either side finds with confidence >= 0.3 is found by
    # the other with the same class, IoU >= 0.9 and confidence within 0.05.
    agreement = re.search(
        r"agrees with ONNX Runtime on 8 images: (\d+) confident boxes, 0 unmatched, "
        r"worst IoU ([\d.]+), largest confidence difference ([\d.]+)",
        finished.stdout,
    )
    assert agreement, finished.stdout
    assert int(agreement[1]) >= 8  # real boxes were compared, not an empty set
    assert float(agreement[2]) >= 0.9 and float(agreement[3]) <= 0.05
