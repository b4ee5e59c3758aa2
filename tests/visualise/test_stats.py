from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.classes import ClassTable
from azaion_training.fs import AnnotationDir
from azaion_training.labels import Box
from azaion_training.visualise import (
    collect_stats,
    list_images,
    plot_box_sizes,
    plot_boxes_per_image,
    plot_class_counts,
    save_figure,
    stats_table,
)

from .conftest import add_image, read_png_rgb

TABLE = ClassTable.default()


@pytest.fixture
def splits(tmp_path: Path) -> dict:
    train, valid = AnnotationDir(tmp_path / "train"), AnnotationDir(tmp_path / "valid")
    add_image(train, "t1", [Box(1, 0.5, 0.5, 0.2, 0.4), Box(1, 0.2, 0.2, 0.1, 0.1)])
    add_image(train, "t2", [Box(21, 0.5, 0.5, 0.5, 0.5), Box(42, 0.5, 0.5, 0.3, 0.1)])
    add_image(train, "t3", [])  # background
    add_image(train, "t4", None)  # no label file
    add_image(train, "t5", None)
    (train.labels / "t5.txt").write_text("99 0.5 0.5 0.1 0.1\n")  # invalid
    add_image(valid, "v1", [Box(1, 0.5, 0.5, 0.2, 0.2), Box(0, 0.5, 0.5, 0.2, 0.2)])
    add_image(valid, "v2", [Box(1, 0.5, 0.5, 0.4, 0.2)])
    return {"train": list_images(train), "valid": list_images(valid)}


def test_collect_stats(splits: dict) -> None:
    stats = collect_stats(splits)
    train, valid = stats["train"], stats["valid"]
    assert (train.images, train.unlabelled, train.invalid, train.background) == (5, 1, 1, 2)
    assert train.class_counts == {1: 2, 21: 1, 42: 1}
    assert sorted(train.boxes_per_image) == [0, 0, 2, 2]
    assert sorted(zip(train.widths, train.heights, strict=True)) == [
        (0.1, 0.1),
        (0.2, 0.4),
        (0.3, 0.1),
        (0.5, 0.5),
    ]
    assert (valid.images, valid.boxes, valid.class_counts) == (2, 3, {1: 2, 0: 1})


def test_stats_table_counts(splits: dict) -> None:
    text = stats_table(collect_stats(splits), TABLE)
    rows = {line[:27].strip(): line[27:].split() for line in text.splitlines() if line[:1] != "-"}
    assert rows["class"] == ["train", "valid", "total"]
    assert rows["0 ArmorVehicle"] == ["0", "1", "1"]
    assert rows["1 Truck"] == ["2", "2", "4"]
    assert rows["21 Truck(Wint)"] == ["1", "0", "1"]  # weather modes apart
    assert rows["42 Vehicle(Night)"] == ["1", "0", "1"]
    assert rows["boxes"] == ["4", "3", "7"]
    assert rows["images"] == ["5", "2", "7"]
    assert rows["background images"] == ["2", "0", "2"]
    assert rows["images without a label"] == ["1", "0", "1"]
    assert rows["invalid labels"] == ["1", "0", "1"]
    assert rows["boxes per image (mean)"] == ["1.0", "1.5"]
    assert rows["boxes per image (max)"] == ["2", "2"]
    assert "2 Vehicle" not in rows  # slots that do not occur are left out


def test_plots_render_headless_to_png(splits: dict, tmp_path: Path) -> None:
    stats = collect_stats(splits)
    figures = {
        "classes": plot_class_counts(stats, TABLE),
        "sizes": plot_box_sizes(stats),
        "per-image": plot_boxes_per_image(stats),
    }
    labels = [t.get_text() for t in figures["classes"].axes[0].get_yticklabels()]
    assert labels == ["ArmorVehicle (0)", "Truck (1)", "Truck(Wint) (21)", "Vehicle(Night) (42)"]
    for name, figure in figures.items():
        image = read_png_rgb(save_figure(figure, tmp_path / f"{name}.png"))
        assert image.shape[0] > 200 and image.shape[1] > 800
        assert (image < 250).any()  # something is drawn


def test_empty_split_still_plots(tmp_path: Path) -> None:
    folder = AnnotationDir(tmp_path / "empty")
    folder.create()
    stats = collect_stats({"empty": list_images(folder)})
    assert "images" in stats_table(stats, TABLE)
    for figure in (
        plot_class_counts(stats, TABLE),
        plot_box_sizes(stats),
        plot_boxes_per_image(stats),
    ):
        read_png_rgb(save_figure(figure, tmp_path / "x.png"))
