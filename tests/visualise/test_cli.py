"""`azaion-visualise` in-process: grid and stats files under a throwaway data root."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.cli.visualise import main
from azaion_training.fs import AnnotationDir, DataTree
from azaion_training.labels import Box

from .conftest import add_image, read_png_rgb


@pytest.fixture
def root(tree: DataTree) -> Path:
    add_image(tree.data, "truck", [Box(1, 0.5, 0.5, 0.4, 0.4)])
    add_image(tree.data, "car", [Box(2, 0.5, 0.5, 0.2, 0.2)])
    dataset = tree.datasets / "azaion-2026-03-01"
    add_image(AnnotationDir(dataset / "train"), "t1", [Box(1, 0.5, 0.5, 0.4, 0.4)] * 3)
    add_image(AnnotationDir(dataset / "train"), "t2", [Box(41, 0.5, 0.5, 0.2, 0.2)])
    add_image(AnnotationDir(dataset / "valid"), "v1", [Box(21, 0.5, 0.5, 0.2, 0.2)])
    return tree.root


def test_grid(root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "grid.png"
    assert main(["--root", str(root), "--n", "4", "--out", str(out)]) == 0
    assert f"grid of 2 images: {out}" in capsys.readouterr().out
    read_png_rgb(out)


def test_grid_of_one_class(root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "trucks.png"
    code = main(["dataset", "--root", str(root), "--class", "Truck", "--out", str(out)])
    assert code == 0
    assert "grid of 3 images" in capsys.readouterr().out  # t1 (Truck), t2 (Night), v1 (Wint)
    read_png_rgb(out)


def test_stats(root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report.png"
    assert main(["dataset", "--root", str(root), "--stats", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = {line[:27].strip(): line[27:].split() for line in printed.splitlines()}
    assert rows["1 Truck"] == ["3", "0", "3"]
    assert rows["21 Truck(Wint)"] == ["0", "1", "1"]
    assert rows["41 Truck(Night)"] == ["1", "0", "1"]
    assert rows["images"] == ["2", "1", "3"]
    for name in ("classes", "box-sizes", "boxes-per-image"):
        read_png_rgb(tmp_path / f"report-{name}.png")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--browse"], "needs a display"),  # the tests run headless (Agg)
        (["data", "somewhere"], "goes only with 'dataset'"),
        (["--class", "Bus"], "unknown class 'Bus'"),
        (["dataset", "--split", "test"], "has no 'test' split"),
        (["--model", "none.onnx"], "model file none.onnx does not exist"),
    ],
)
def test_errors_exit_1(root: Path, tmp_path: Path, capsys, monkeypatch, argv, message) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--root", str(root)]) == 1
    assert message in capsys.readouterr().err


def test_bad_numbers_are_usage_errors(root: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--root", str(root), "--n", "0"])
    assert info.value.code == 2
