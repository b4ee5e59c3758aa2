from __future__ import annotations

from contextlib import nullcontext as does_not_raise
from pathlib import Path

import pytest

from azaion_training.classes import ClassTable
from azaion_training.errors import ConfigError, DatasetError
from azaion_training.fs import AnnotationDir, DataTree
from azaion_training.labels import Box
from azaion_training.visualise import class_ids, list_images, resolve_folders, with_class

from .conftest import add_image

TABLE = ClassTable.default()


@pytest.mark.parametrize(
    ("name", "expected", "exception"),
    [
        ("Truck", {1, 21, 41}, does_not_raise()),  # a base name: every weather mode
        ("truck", {1, 21, 41}, does_not_raise()),  # case-insensitive
        ("Armor", {0, 20, 40}, does_not_raise()),  # a short name
        ("Truck(Wint)", {21}, does_not_raise()),  # one mode
        ("21", {21}, does_not_raise()),  # a slot number
        ("Class-57", {57}, does_not_raise()),  # an unused slot by name
        ("Bus", None, pytest.raises(ConfigError, match="unknown class 'Bus'; known classes: Arm")),
    ],
)
def test_class_ids(name: str, expected: set[int] | None, exception) -> None:
    with exception:
        assert class_ids(name, TABLE) == expected


def test_list_images_pairs_labels_and_skips_temporary_files(tmp_path: Path) -> None:
    folder = AnnotationDir(tmp_path / "d")
    add_image(folder, "b", [Box(1, 0.5, 0.5, 0.1, 0.1)])
    add_image(folder, "a", None)  # no label: no boxes
    (folder.images / ".c.png.1234.tmp").write_bytes(b"partial")
    (folder.images / "notes.txt").write_text("x")
    items = list_images(folder)
    assert [i.name for i in items] == ["a", "b"]
    assert items[0].boxes() == [] and items[1].boxes() == [Box(1, 0.5, 0.5, 0.1, 0.1)]


def test_with_class_keeps_images_with_that_class(tmp_path: Path) -> None:
    folder = AnnotationDir(tmp_path / "d")
    add_image(folder, "truck", [Box(21, 0.5, 0.5, 0.1, 0.1)])
    add_image(folder, "car", [Box(2, 0.5, 0.5, 0.1, 0.1)])
    add_image(folder, "bad", None)
    (folder.labels / "bad.txt").write_text("nonsense\n")
    assert [i.name for i in with_class(list_images(folder), class_ids("Truck", TABLE))] == ["truck"]


@pytest.fixture
def tree(tmp_path: Path) -> DataTree:
    tree = DataTree(tmp_path / "root").create()
    for name in ("azaion-2026-01-01", "azaion-2026-02-01"):
        for split in ("train", "valid"):
            AnnotationDir(tree.datasets / name / split).create()
    return tree


@pytest.mark.parametrize(
    ("source", "path", "split", "expected"),
    [
        ("data", None, None, {"data": "data"}),
        ("processed", None, None, {"data-processed": "data-processed"}),
        ("seed", None, None, {"data-seed": "data-seed"}),
        # the newest dataset, every split it has
        (
            "dataset",
            None,
            None,
            {
                "train": "datasets/azaion-2026-02-01/train",
                "valid": "datasets/azaion-2026-02-01/valid",
            },
        ),
        ("dataset", None, "valid", {"valid": "datasets/azaion-2026-02-01/valid"}),
        (
            "dataset",
            "datasets/azaion-2026-01-01",
            "train",
            {"train": "datasets/azaion-2026-01-01/train"},
        ),
        # a plain annotation folder given as the dataset
        ("dataset", "data", None, {"data": "data"}),
    ],
)
def test_resolve_folders(tree: DataTree, source, path, split, expected) -> None:
    folders = resolve_folders(tree, source, path=tree.root / path if path else None, split=split)
    assert {k: v.path.relative_to(tree.root).as_posix() for k, v in folders.items()} == expected


@pytest.mark.parametrize(
    ("source", "path", "split", "error", "match"),
    [
        ("data", "x", None, ConfigError, "goes only with 'dataset'"),
        ("data", None, "train", ConfigError, "--split goes only with 'dataset'"),
        ("dataset", None, "test", ConfigError, "has no 'test' split"),
        ("dataset", "nowhere", None, DatasetError, "has no images/ folder"),
        ("elsewhere", None, None, ConfigError, "unknown source"),
    ],
)
def test_resolve_folders_errors(tree: DataTree, source, path, split, error, match) -> None:
    with pytest.raises(error, match=match):
        resolve_folders(tree, source, path=tree.root / path if path else None, split=split)


def test_no_dataset_yet(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no dataset under"):
        resolve_folders(DataTree(tmp_path).create(), "dataset")
