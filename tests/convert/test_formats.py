"""The source-format table: a new format is one reader plus one row."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.convert import convert
from azaion_training.convert.records import PixelBox, SourceAnnotation
from azaion_training.convert.runner import READERS, InputFormat
from azaion_training.convert.sources import ImageIndex, ReadOptions, Sources
from azaion_training.errors import DatasetError
from azaion_training.labels import read_label
from azaion_training.registry import Option

from .conftest import write_image


def read_csv(source: Path, options: ReadOptions) -> Sources:
    """A fake format: ``boxes.csv`` (or ``--file``) with ``image,label,x1,y1,x2,y2`` per line."""
    annotations = []
    for line in (source / options["file"]).read_text().splitlines():
        image, label, *corners = line.split(",")
        x1, y1, x2, y2 = map(float, corners)
        box = PixelBox(label=label, x1=x1, y1=y1, x2=x2, y2=y2)
        annotations.append(
            SourceAnnotation(name=Path(image).stem, source=line, image=image, boxes=(box,))
        )
    return Sources(annotations, [], ImageIndex(source, excluded=options.excluded))


CSV = InputFormat(
    "csv",
    f"{__name__}:read_csv",
    "SRC/boxes.csv: image,label,x1,y1,x2,y2 per line",
    options=(Option("file", "the CSV file's name in SRC", type=str, default="boxes.csv"),),
)


def test_a_registered_format_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(READERS, "csv", CSV)  # the one registration
    source = tmp_path / "csv"
    write_image(source / "a.jpg", 200, 100)
    (source / "boxes.csv").write_text("a.jpg,Truck,20,10,60,50\n")
    report = convert("csv", source, tmp_path / "out")
    assert (report.images, report.boxes) == (1, 1)
    (box,) = read_label(tmp_path / "out" / "labels" / "a.txt")
    assert (box.class_id, box.cx, box.cy, box.w, box.h) == pytest.approx((1, 0.2, 0.3, 0.2, 0.4))

    from azaion_training.cli.convert import build_parser, main

    help_text = build_parser().format_help()
    assert "csv" in help_text and "SRC/boxes.csv: image,label" in help_text  # FORMAT, formats:
    assert "csv only: the CSV file's name in SRC" in help_text
    (source / "other.csv").write_text("a.jpg,Car,20,10,60,50\n")
    assert main(["csv", str(source), str(tmp_path / "out2"), "--file", "other.csv"]) == 0
    (box,) = read_label(tmp_path / "out2" / "labels" / "a.txt")
    assert box.class_id == 2

    from azaion_training.cli.demo import build_parser as demo_parser

    assert "{yolo,voc,oriented,coco,csv}" in demo_parser().format_help()  # the demo takes it


@pytest.mark.parametrize(
    ("argv", "refused"),
    [
        (["voc", "SRC", "DEST", "--images", "x"], "--images is not an option of format voc"),
        (["coco", "SRC", "DEST", "--corner-order", "xyxyxyxy"], "--corner-order is not an"),
    ],
)
def test_an_option_of_another_format_is_a_usage_error(
    argv: list[str], refused: str, capsys
) -> None:
    from azaion_training.cli.convert import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert refused in capsys.readouterr().err.splitlines()[-1]
    with pytest.raises(DatasetError, match="--images is not an option of format voc"):
        convert("voc", Path("SRC"), Path("DEST"), images=Path("x"))


def test_an_unknown_format_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown format 'yaml'; expected one of voc, oriented"):
        convert("yaml", tmp_path, tmp_path / "out")
