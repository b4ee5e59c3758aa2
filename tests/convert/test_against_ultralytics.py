"""COCO -> YOLO: our converter agrees with Ultralytics' own `convert_coco` on the same JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from azaion_training.convert import ClassMap, convert

from .conftest import write_image

SIZES = [(320, 240), (64, 128), (500, 375), (97, 61)]
CATEGORIES = {1: "Truck", 2: "car", 3: "tank", 5: "ship"}  # COCO ids are 1-based, with gaps


def _random_document(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id, (width, height) in enumerate(SIZES, start=1):
        images.append(
            {"id": image_id, "file_name": f"img_{image_id}.jpg", "width": width, "height": height}
        )
        for _ in range(int(rng.integers(1, 7))):
            w, h = rng.uniform(1, width / 2), rng.uniform(1, height / 2)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(rng.choice(list(CATEGORIES))),
                    "bbox": [round(v, 2) for v in (x, y, w, h)],
                    "iscrowd": int(rng.random() < 0.15),
                }
            )
    categories = [{"id": i, "name": name} for i, name in CATEGORIES.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def _rows(path: Path) -> list[tuple[int, float, float, float, float]]:
    rows = []
    for line in path.read_text().splitlines():
        cls, *values = line.split()
        rows.append((int(cls), *(float(v) for v in values)))
    return sorted(rows)


@pytest.mark.parametrize("seed", [0, 1])
def test_coco_agrees_with_ultralytics(seed: int, tmp_path: Path) -> None:
    from ultralytics.data.converter import convert_coco

    document = _random_document(seed)
    source = tmp_path / "coco"
    (source / "annotations").mkdir(parents=True)
    (source / "annotations" / "instances_x.json").write_text(json.dumps(document))
    for image in document["images"]:
        write_image(source / "images" / image["file_name"], image["width"], image["height"])

    # Ultralytics with cls91to80=False writes class = category_id - 1; map our names the same way.
    mapping = {name: category_id - 1 for category_id, name in CATEGORIES.items()}
    ours = tmp_path / "ours"
    report = convert(
        "coco",
        source / "annotations" / "instances_x.json",
        ours,
        images=source / "images",
        class_map=ClassMap.default().with_overrides(mapping=mapping),
    )
    theirs = tmp_path / "theirs"
    convert_coco(labels_dir=str(source / "annotations"), save_dir=str(theirs), cls91to80=False)

    crowd = sum(a["iscrowd"] for a in document["annotations"])
    assert report.boxes == len(document["annotations"]) - crowd
    assert len(report.skipped_boxes) == crowd
    compared = 0
    for image in document["images"]:
        stem = Path(image["file_name"]).stem
        their_file = theirs / "labels" / "x" / f"{stem}.txt"
        ours_rows = _rows(ours / "labels" / f"{stem}.txt")
        their_rows = _rows(their_file) if their_file.exists() else []
        assert [r[0] for r in ours_rows] == [r[0] for r in their_rows]
        for mine, reference in zip(ours_rows, their_rows, strict=True):
            # Ultralytics prints 6 significant digits (%g), we print 6 decimals
            assert mine[1:] == pytest.approx(reference[1:], abs=2e-6, rel=1e-5)
            compared += 1
    assert compared == report.boxes > 0
