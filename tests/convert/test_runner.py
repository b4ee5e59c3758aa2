"""End-to-end conversions on hand-made folders, checked to the coordinate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from azaion_training.convert import ClassMap, SkipReason, convert
from azaion_training.errors import DatasetError
from azaion_training.labels import read_label

from .conftest import label_lines, oriented_line, voc_xml, write_image


def _reasons(skips) -> list[tuple[SkipReason, str]]:
    return sorted((s.reason, Path(s.where.split(" ")[0].split(":")[0]).name) for s in skips)


@pytest.fixture
def voc_source(tmp_path: Path) -> Path:
    src = tmp_path / "voc"
    write_image(src / "JPEGImages" / "f1.jpg", 200, 100)
    write_image(src / "JPEGImages" / "f3.png", 64, 32)
    write_image(src / "JPEGImages" / "f4.jpg", 50, 50)
    ann = src / "Annotations"
    ann.mkdir(parents=True)
    (ann / "f1.xml").write_text(
        voc_xml(
            "f1.jpg",
            [
                ("Truck", 20, 10, 60, 50),  # -> 1 0.2 0.3 0.2 0.4
                ("Taxi", 0, 0, 200, 100),  # -> 2 0.5 0.5 1 1
                ("Motorcycle", 5, 5, 10, 10),  # skipped by the default map
                ("Bus", 5, 5, 10, 10),  # unknown
                ("Car", 150, 50, 260, 90),  # out of range
                ("Car", 30, 30, 30, 60),  # degenerate
            ],
            size=(200, 100),
        )
    )
    (ann / "f2.xml").write_text(voc_xml("f2.jpg", [("Truck", 1, 1, 5, 5)]))  # image missing
    (ann / "f3.xml").write_text(voc_xml("f3.png", [], size=(64, 32)))  # background image
    (ann / "f4.xml").write_text(voc_xml("f4.jpg", [("Car", 1, 1, 5, 5)], size=(60, 50)))  # size
    (ann / "f5.xml").write_text("<annotation><object>")  # does not parse
    return src


def test_voc(voc_source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    report = convert("voc", voc_source, dest)
    assert label_lines(dest / "labels" / "f1.txt") == [
        "1 0.200000 0.300000 0.200000 0.400000",
        "2 0.500000 0.500000 1.000000 1.000000",
    ]
    assert label_lines(dest / "labels" / "f3.txt") == []
    assert sorted(p.name for p in (dest / "images").iterdir()) == ["f1.jpg", "f3.png"]
    assert sorted(p.name for p in (dest / "labels").iterdir()) == ["f1.txt", "f3.txt"]
    assert (dest / "images" / "f1.jpg").read_bytes() == (
        voc_source / "JPEGImages" / "f1.jpg"
    ).read_bytes()
    assert (report.images, report.boxes, report.linked) == (2, 2, 0)
    assert _reasons(report.skipped_images) == sorted(
        [
            (SkipReason.BAD_ANNOTATION, "f5.xml"),
            (SkipReason.IMAGE_MISSING, "f2.xml"),
            (SkipReason.SIZE_MISMATCH, "f4.xml"),
        ]
    )
    assert _reasons(report.skipped_boxes) == sorted(
        [
            (SkipReason.UNKNOWN_CLASS, "f1.xml"),
            (SkipReason.SKIPPED_CLASS, "f1.xml"),
            (SkipReason.OUT_OF_RANGE, "f1.xml"),
            (SkipReason.DEGENERATE, "f1.xml"),
        ]
    )
    assert report.unknown_names == {"'Bus'": 1}
    summary = report.summary()
    assert "converted 2 images, 2 boxes" in summary
    assert "skipped 3 images, 4 boxes" in summary
    assert "image: image missing" in summary and "f2.jpg" in summary


def test_voc_with_map_and_link(voc_source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    class_map = ClassMap.default().with_overrides(mapping={"Bus": 7, "Motorcycle": 11})
    report = convert("voc", voc_source, dest, class_map=class_map, link=True)
    assert label_lines(dest / "labels" / "f1.txt") == [
        "1 0.200000 0.300000 0.200000 0.400000",
        "2 0.500000 0.500000 1.000000 1.000000",
        "11 0.037500 0.075000 0.025000 0.050000",
        "7 0.037500 0.075000 0.025000 0.050000",
    ]
    source_image = voc_source / "JPEGImages" / "f1.jpg"
    assert os.path.samefile(dest / "images" / "f1.jpg", source_image)
    assert report.linked == 2
    # a second run over the same folder gives the same result and keeps the links
    again = convert("voc", voc_source, dest, class_map=class_map, link=True)
    assert (again.images, again.boxes, again.linked) == (2, 4, 2)
    assert not [p for p in dest.rglob(".*")]  # no temporary files left


def test_unknown_classes_as_error_write_nothing(voc_source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with pytest.raises(DatasetError, match=r"unknown class names: 'Bus' x1.*nothing was written"):
        convert("voc", voc_source, dest, unknown_classes="error")
    assert not dest.exists()


def test_oriented(tmp_path: Path) -> None:
    src = tmp_path / "vedai"
    write_image(src / "00000001.png", 100, 50)
    write_image(src / "00000002.png", 100, 50)
    lines = [
        oriented_line(2, [(10, 20), (50, 20), (50, 40), (10, 40)]),  # truck 10..50 x 20..40
        oriented_line(1, [(50, 10), (60, 20), (50, 30), (40, 20)]),  # car, diamond 40..60 x 10..30
        oriented_line(7, [(1, 1), (2, 1), (2, 2), (1, 2)]),  # motorcycle: skipped
        oriented_line(9, [(1, 1), (2, 1), (2, 2), (1, 2)]),  # van: unknown until mapped
        oriented_line(1, [(90, 40), (105, 40), (105, 49), (90, 49)]),  # out of range
        oriented_line(1, [(5, 5), (5, 5), (5, 5), (5, 5)]),  # degenerate: a point
        "1 2 3",  # bad line
    ]
    (src / "00000001.txt").write_text("\n".join(lines) + "\n")
    (src / "00000003.txt").write_text(lines[0] + "\n")  # image missing
    (src / "labels").mkdir()
    (src / "labels" / "00000002.txt").write_text("not ours\n")  # a bad line; image found by stem
    dest = tmp_path / "out"
    report = convert(
        "oriented", src, dest, class_map=ClassMap.default().with_overrides(mapping={"van": 2})
    )
    assert label_lines(dest / "labels" / "00000001.txt") == [
        "1 0.300000 0.600000 0.400000 0.400000",
        "2 0.500000 0.400000 0.200000 0.400000",
        "2 0.015000 0.030000 0.010000 0.020000",
    ]
    assert report.images == 2  # 00000001 and 00000002 (whose text held only a bad line)
    assert label_lines(dest / "labels" / "00000002.txt") == []
    assert _reasons(report.skipped_images) == [(SkipReason.IMAGE_MISSING, "00000003.txt")]
    assert sorted(s.reason for s in report.skipped_boxes) == sorted(
        [
            SkipReason.SKIPPED_CLASS,
            SkipReason.OUT_OF_RANGE,
            SkipReason.DEGENERATE,
            SkipReason.BAD_BOX,
            SkipReason.BAD_BOX,
        ]
    )


def test_oriented_ignores_its_own_output_inside_the_source(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_image(src / "a.png", 100, 50)
    (src / "a.txt").write_text(oriented_line(2, [(10, 20), (50, 20), (50, 40), (10, 40)]))
    first = convert("oriented", src, src)  # DEST == SRC: images/ and labels/ appear inside it
    second = convert("oriented", src, src)
    assert (first.images, second.images) == (1, 1)
    assert second.skipped_boxes == [] and second.skipped_images == []
    assert read_label(src / "labels" / "a.txt")[0].class_id == 1


def _coco(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    write_image(root / "images" / "train" / "a.jpg", 200, 100)
    write_image(root / "images" / "b.jpg", 64, 64)
    document = {
        "images": [
            {"id": 1, "file_name": "train/a.jpg", "width": 200, "height": 100},
            {"id": 2, "file_name": "b.jpg", "width": 64, "height": 64},
            {"id": 3, "file_name": "missing.jpg", "width": 64, "height": 64},
            {"id": 4, "file_name": "../../outside/b.jpg", "width": 64, "height": 64},
        ],
        "categories": [{"id": 1, "name": "truck"}, {"id": 2, "name": "tank"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 10, 40, 40]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 200, 100]},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [190, 0, 20, 10]},  # out
            {"id": 4, "image_id": 2, "category_id": 1, "bbox": [0, 0, 32, 16]},
            {"id": 5, "image_id": 2, "category_id": 1, "bbox": [0, 0, 32, 16], "iscrowd": 1},
        ],
    }
    (root / "annotations").mkdir()
    path = root / "annotations" / "instances.json"
    path.write_text(json.dumps(document))
    return path


def test_coco(tmp_path: Path) -> None:
    src = _coco(tmp_path)
    dest = tmp_path / "out"
    report = convert(
        "coco",
        src,
        dest,
        images=src.parent.parent / "images",
        class_map=ClassMap.default().with_overrides(mapping={"tank": 0}),
    )
    assert label_lines(dest / "labels" / "a.txt") == [
        "1 0.200000 0.300000 0.200000 0.400000",
        "0 0.500000 0.500000 1.000000 1.000000",
    ]
    assert label_lines(dest / "labels" / "b.txt") == ["1 0.250000 0.125000 0.500000 0.250000"]
    # image 4's "../../outside/b.jpg" matches only by file name, inside the image folder: b.jpg
    # is already converted, so it is reported as a duplicate and nothing is read from outside
    assert [(s.reason, s.where) for s in report.skipped_images] == [
        (SkipReason.IMAGE_MISSING, f"{src} image 3"),
        (SkipReason.DUPLICATE_NAME, f"{src} image 4"),
    ]
    assert sorted(s.reason for s in report.skipped_boxes) == sorted(
        [SkipReason.OUT_OF_RANGE, SkipReason.CROWD]
    )


def test_coco_missing_image_folder(tmp_path: Path) -> None:
    src = _coco(tmp_path)
    with pytest.raises(DatasetError, match=r"image folder .* does not exist"):
        convert("coco", src, tmp_path / "out", images=tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("fmt", "make", "match"),
    [
        ("voc", lambda p: None, "does not exist"),  # no source
        ("voc", lambda p: p.mkdir(), r"no Pascal VOC XML files"),  # empty folder
        ("oriented", lambda p: p.mkdir(), r"no oriented-box text files"),  # empty folder
        ("coco", lambda p: p.mkdir(), "no COCO JSON files"),  # folder without JSON
        ("coco", lambda p: p.write_text("{"), "cannot read COCO JSON"),  # broken JSON
        ("coco", lambda p: p.write_text("[]"), "expected a JSON object"),  # not an object
    ],
)
def test_unusable_sources_raise(fmt: str, make, match: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    make(source)
    with pytest.raises(DatasetError, match=match):
        convert(fmt, source, tmp_path / "out")  # type: ignore[arg-type]
