"""The source-format table: a new format is one reader plus one row."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.convert import convert
from azaion_training.convert.records import PixelBox, SourceAnnotation
from azaion_training.convert.runner import READERS
from azaion_training.convert.sources import ImageIndex, ReadOptions, Sources
from azaion_training.errors import DatasetError
from azaion_training.labels import read_label

from .conftest import write_image


def read_csv(source: Path, options: ReadOptions) -> Sources:
    """A fake format: ``boxes.csv`` with ``image,label,x1,y1,x2,y2`` per line."""
    annotations = []
    for line in (source / "boxes.csv").read_text().splitlines():
        image, label, *corners = line.split(",")
        x1, y1, x2, y2 = map(float, corners)
        box = PixelBox(label=label, x1=x1, y1=y1, x2=x2, y2=y2)
        annotations.append(
            SourceAnnotation(name=Path(image).stem, source=line, image=image, boxes=(box,))
        )
    return Sources(annotations, [], ImageIndex(source, excluded=options.excluded))


def test_a_registered_format_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(READERS, "csv", f"{__name__}:read_csv")  # the one registration
    source = tmp_path / "csv"
    write_image(source / "a.jpg", 200, 100)
    (source / "boxes.csv").write_text("a.jpg,Truck,20,10,60,50\n")
    report = convert("csv", source, tmp_path / "out")
    assert (report.images, report.boxes) == (1, 1)
    (box,) = read_label(tmp_path / "out" / "labels" / "a.txt")
    assert (box.class_id, box.cx, box.cy, box.w, box.h) == pytest.approx((1, 0.2, 0.3, 0.2, 0.4))

    from azaion_training.cli.convert import build_parser

    assert "csv" in build_parser().format_help()  # offered as FORMAT


def test_an_unknown_format_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown format 'yaml'; expected one of voc, oriented"):
        convert("yaml", tmp_path, tmp_path / "out")
