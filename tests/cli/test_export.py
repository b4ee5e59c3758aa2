from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from azaion_training.cli.export import main
from azaion_training.config import Settings
from azaion_training.fs import DataTree
from tests import helpers


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return helpers.run_cli("export", *args, cwd=cwd)


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--format", "--imgsz", "--batch", "--half", "--int8", "--data", "--out"):
        assert option in text
    assert "--verify" in text and "--publish" in text and "EXPORT_IMGSZ" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["model.pt", "--format", "tflite"],  # unknown format
        ["model.pt"],  # no format
        ["model.pt", "--format", "rknn", "--verify", "-1"],  # negative count
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: azaion-export" in capsys.readouterr().err


def _tensorrt_and_gpu() -> bool:
    import torch

    return importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


@pytest.mark.skipif(_tensorrt_and_gpu(), reason="this machine has TensorRT and a GPU")
def test_engine_without_gpu_is_one_clear_line(settings: Settings, tree: DataTree) -> None:
    weights = tree.current_model_pt
    weights.write_bytes(b"never read")
    finished = run_cli("--root", str(tree.root), "--format", "engine", cwd=tree.root.parent)
    assert finished.returncode == 1
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert lines[0].startswith("azaion-export: error: TensorRT engine export needs TensorRT")
    assert not list(tree.models.glob("*.engine"))


def test_missing_model_is_one_clear_line(settings: Settings, tree: DataTree) -> None:
    finished = run_cli("--root", str(tree.root), "--format", "onnx", cwd=tree.root.parent)
    assert finished.returncode == 1
    assert finished.stderr.strip() == (
        f"azaion-export: error: weights {tree.current_model_pt} do not exist"
    )


def test_a_model_that_is_not_a_pt_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "some.onnx"
    model.write_bytes(b"x")
    with pytest.raises(SystemExit) as exited:
        main([str(model), "--format", "onnx", "--root", str(tmp_path)])
    assert exited.value.code == 2
    assert f"a .pt checkpoint is expected, got {model}" in capsys.readouterr().err
