from __future__ import annotations

import pytest

from azaion_training.convert import PixelBox, SkipReason, parse_coco
from azaion_training.errors import DatasetError


def _document() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "sub/a.jpg", "width": 200, "height": 100},
            {"id": 2, "file_name": "b.png", "width": 64, "height": 64},
            {"id": 3, "file_name": "c.jpg"},  # no size recorded
        ],
        "categories": [{"id": 5, "name": "Truck"}, {"id": 6, "name": "car"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 5, "bbox": [20, 10, 40, 40], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 6, "bbox": [0, 0, 10, 5]},
            {"id": 12, "image_id": 1, "category_id": 6, "bbox": [0, 0, 10, 5], "iscrowd": 1},
            {"id": 13, "image_id": 1, "category_id": 99, "bbox": [1, 1, 2, 2]},
            {"id": 14, "image_id": 1, "category_id": 5, "bbox": [1, 1, 2]},
            {"id": 15, "image_id": 4, "category_id": 5, "bbox": [1, 1, 2, 2]},
        ],
    }


def test_parse_coco() -> None:
    notes, orphans = parse_coco(_document(), source="x.json")
    a, b, c = notes
    assert (a.name, a.image, a.size, a.source) == ("a", "sub/a.jpg", (200, 100), "x.json image 1")
    assert a.boxes == (
        PixelBox("Truck", 20, 10, 60, 50, where="x.json annotation id 10"),
        PixelBox("car", 0, 0, 10, 5, where="x.json annotation id 11"),
        PixelBox("category 99", 1, 1, 3, 3, where="x.json annotation id 13"),  # unknown id
    )
    assert [(s.reason, s.where) for s in a.skips] == [
        (SkipReason.CROWD, "x.json annotation id 12"),
        (SkipReason.BAD_BOX, "x.json annotation id 14"),
    ]
    assert (b.name, b.size, b.boxes, b.skips) == ("b", (64, 64), (), ())  # background image
    assert (c.name, c.size) == ("c", None)
    assert [(s.reason, s.detail) for s in orphans] == [(SkipReason.BAD_BOX, "no image with id 4")]


@pytest.mark.parametrize(
    "document",
    [
        {},  # nothing
        {"images": [], "annotations": []},  # no categories
        {"images": [{"file_name": "a.jpg"}], "annotations": [], "categories": []},  # no image id
        {"images": "x", "annotations": [], "categories": []},  # wrong type
    ],
)
def test_malformed_documents_raise(document: dict) -> None:
    with pytest.raises(DatasetError, match="not a COCO detection file"):
        parse_coco(document, source="x.json")
