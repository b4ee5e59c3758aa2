"""The export-format table: a new format is one exporter plus one row."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.config import ExportSettings
from azaion_training.errors import ExportError
from azaion_training.export.dispatch import EXPORTERS, ExportJob, ExportResult, export_model
from azaion_training.fs import DataTree
from azaion_training.infer.load import ENGINES


def export_text(job: ExportJob) -> ExportResult:
    """A fake exporter: writes the weights' size into ``azaion.txt``."""
    path = job.folder / "azaion.txt"
    path.write_text(f"{job.weights.stat().st_size} bytes at {job.settings.imgsz}\n")
    return ExportResult(path, f"text, data {job.dataset('a check').name}")


@pytest.fixture
def tree(tmp_path: Path) -> DataTree:
    tree = DataTree(tmp_path / "root").create()
    for name in ("azaion-2026-12-02.9", "azaion-2026-12-02.10", "azaion-2026-12-01"):
        (tree.datasets / name).mkdir()
    return tree


def test_a_registered_format_exports(
    tree: DataTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(EXPORTERS, "text", f"{__name__}:export_text")  # the one registration
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"12345")
    result = export_model(weights, "text", settings=ExportSettings(imgsz=64), tree=tree)
    assert result.path == tree.models / "azaion.txt"
    assert result.path.read_text() == "5 bytes at 64\n"
    assert result.summary == "text, data azaion-2026-12-02.10"  # the newest dataset by (date, N)

    from azaion_training.cli.export import build_parser

    assert "text" in build_parser().format_help()  # offered by --format


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
    assert set(EXPORTERS) == set(ENGINES)
