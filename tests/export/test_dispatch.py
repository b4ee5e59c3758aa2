"""The export-format table: a new format is one exporter plus one row."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.config import ExportSettings
from azaion_training.errors import ExportError
from azaion_training.export.dispatch import (
    EXPORT_FORMATS,
    ExportFormat,
    ExportJob,
    ExportResult,
    export_model,
)
from azaion_training.fs import DataTree
from azaion_training.infer.load import ENGINES
from azaion_training.registry import Option


def export_text(job: ExportJob) -> ExportResult:
    """A fake exporter: writes the weights' size into ``azaion.txt``."""
    path = job.folder / "azaion.txt"
    path.write_text(
        f"{job.weights.stat().st_size} bytes at {job.settings.imgsz}{job.options['suffix']}\n"
    )
    return ExportResult(path, f"text, data {job.dataset('a check').name}")


@pytest.fixture
def tree(tmp_path: Path) -> DataTree:
    tree = DataTree(tmp_path / "root").create()
    for name in ("azaion-2026-12-02.9", "azaion-2026-12-02.10", "azaion-2026-12-01"):
        (tree.datasets / name).mkdir()
    return tree


TEXT = ExportFormat(
    "text",
    f"{__name__}:export_text",
    "azaion.txt",
    "the weights' size, as text",
    options=(Option("suffix", "text written after the size", type=str, default=""),),
)


def test_a_registered_format_exports_with_its_own_option(
    tree: DataTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(EXPORT_FORMATS, "text", TEXT)  # the one registration
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"12345")
    result = export_model(weights, "text", settings=ExportSettings(imgsz=64), tree=tree)
    assert result.path == tree.models / "azaion.txt"
    assert result.path.read_text() == "5 bytes at 64\n"  # the option's default
    assert result.summary == "text, data azaion-2026-12-02.10"  # the newest dataset by (date, N)

    from azaion_training.cli.export import build_parser, main

    help_text = build_parser().format_help()
    assert "azaion.txt" in help_text and "the weights' size, as text" in help_text  # --format
    assert "--suffix" in help_text and "text only: text written after the size" in help_text
    args = [str(weights), "--root", str(tree.root), "--format", "text", "--suffix", " px"]
    assert main(args) == 0
    assert result.path.read_text() == "5 bytes at 1280 px\n"
    with pytest.raises(SystemExit) as exited:
        main([str(weights), "--root", str(tree.root), "--format", "onnx", "--suffix", "x"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "azaion-export: error: --suffix is not an option of export format onnx (its options: none)"
    )


@pytest.mark.parametrize(
    ("fmt", "options", "refused"),
    [
        ("onnx", {"verify": 3}, "--verify is not an option of export format onnx"),
        ("rknn", {"force": True}, "--force is not an option of export format rknn"),
        ("engine", {"verify": 2}, "--verify is not an option of export format engine"),
    ],
)
def test_an_option_of_another_format_is_refused(
    tree: DataTree, tmp_path: Path, fmt: str, options: dict, refused: str
) -> None:
    with pytest.raises(ExportError, match=refused):
        export_model(tmp_path / "best.pt", fmt, settings=ExportSettings(), tree=tree, **options)


def test_an_unknown_format_names_the_known_ones(tree: DataTree, tmp_path: Path) -> None:
    with pytest.raises(
        ExportError, match=r"unknown export format 'tensorrt' \(choose from onnx, engine, rknn\)"
    ):
        export_model(tmp_path / "best.pt", "tensorrt", settings=ExportSettings(), tree=tree)


def test_a_job_without_data_or_dataset_says_what_it_needs(tmp_path: Path) -> None:
    tree = DataTree(tmp_path / "empty").create()
    job = ExportJob(tmp_path / "best.pt", tree.models, ExportSettings(), tree)
    with pytest.raises(ExportError, match="INT8 calibration needs images: pass --data"):
        job.dataset("INT8 calibration")
    assert (
        ExportJob(job.weights, job.folder, job.settings, tree, data=tmp_path).dataset("x")
        == tmp_path
    )


def test_every_export_format_names_an_engine_kind() -> None:
    """One name per format: ``--format engine`` makes what the ``engine`` kind runs."""
    assert set(EXPORT_FORMATS) == set(ENGINES)
