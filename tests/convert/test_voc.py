from __future__ import annotations

import pytest

from azaion_training.convert import PixelBox, SkipReason, parse_voc
from azaion_training.errors import DatasetError

from .conftest import voc_xml


def test_parse_voc_reads_name_size_and_boxes() -> None:
    text = voc_xml(
        "frames/f1.JPG",
        [("Truck", 20, 10, 60, 50), ("car", 1.5, 2.25, 3.5, 4.75)],
        size=(200, 100),
    )
    note = parse_voc(text, source="ann/f1.xml")
    assert note.name == "f1"
    assert note.image == "frames/f1.JPG"
    assert note.size == (200, 100)
    assert note.boxes == (
        PixelBox("Truck", 20, 10, 60, 50, where="ann/f1.xml object 1"),
        PixelBox("car", 1.5, 2.25, 3.5, 4.75, where="ann/f1.xml object 2"),
    )
    assert note.skips == ()


@pytest.mark.parametrize(
    ("text", "name", "size"),
    [
        (voc_xml(None, []), "x", None),  # no <filename>: the XML's stem names it
        (voc_xml("a.jpg", [], size=(0, 0)), "a", None),  # zero size means unknown
        (
            "<annotation><filename>b.png</filename><size><width>w</width></size></annotation>",
            "b",
            None,
        ),
        (voc_xml("C:\\data\\c.jpg", []), "c", None),  # Windows path
    ],
)
def test_parse_voc_names_and_sizes(text: str, name: str, size: tuple[int, int] | None) -> None:
    note = parse_voc(text, source="dir/x.xml")
    assert (note.name, note.size, note.boxes) == (name, size, ())


@pytest.mark.parametrize(
    ("object_xml", "detail"),
    [
        ("<object><name>Truck</name></object>", "missing or non-numeric <bndbox>"),
        (
            "<object><name>Truck</name><bndbox><xmin>a</xmin><ymin>1</ymin><xmax>2</xmax>"
            "<ymax>3</ymax></bndbox></object>",
            "missing or non-numeric <bndbox>",
        ),
        (
            "<object><name>Truck</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>inf</xmax>"
            "<ymax>3</ymax></bndbox></object>",
            "missing or non-numeric <bndbox>",
        ),
        (
            "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax></bndbox>"
            "</object>",
            "no <name>",
        ),
    ],
)
def test_bad_objects_are_skipped_and_reported(object_xml: str, detail: str) -> None:
    note = parse_voc(f"<annotation>{object_xml}</annotation>", source="x.xml")
    assert note.boxes == ()
    assert [(s.reason, s.where, s.detail) for s in note.skips] == [
        (SkipReason.BAD_BOX, "x.xml object 1", detail)
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<annotation><object>", "not valid XML"),  # truncated
        ("", "not valid XML"),  # empty
        ("<html></html>", "expected <annotation>"),  # some other XML
    ],
)
def test_unreadable_xml_raises(text: str, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        parse_voc(text, source="x.xml")
