"""COCO detection JSON -> `SourceAnnotation` per image: `parse_coco` (pure) and `read_coco`.

Read fields: ``images[].{id, file_name, width, height}``, ``categories[].{id, name}`` and
``annotations[].{image_id, category_id, bbox, iscrowd}``, where ``bbox`` is
``[x, y, width, height]`` in pixels from the top-left corner. Boxes are matched to our classes by
category *name* through the class map. As in Ultralytics' own converter, crowd annotations
(``iscrowd: 1``) are left out; here they are also reported. Every image gets an annotation, so
images without boxes are converted as background images.

Example:
    >>> data = {
    ...     "images": [{"id": 7, "file_name": "a/b.jpg", "width": 100, "height": 50}],
    ...     "categories": [{"id": 3, "name": "car"}],
    ...     "annotations": [{"image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 10]}],
    ... }
    >>> (note,), orphans = parse_coco(data, source="x.json")
    >>> box = note.boxes[0]
    >>> note.name, note.image, note.size, (box.label, box.x1, box.y1, box.x2, box.y2)
    ('b', 'a/b.jpg', (100, 50), ('car', 10.0, 5.0, 30.0, 15.0))
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from azaion_training.convert.records import PixelBox, SourceAnnotation
from azaion_training.convert.report import Skip, SkipReason
from azaion_training.convert.sources import ImageIndex, ReadOptions, Sources
from azaion_training.errors import DatasetError


def read_coco(source: Path, options: ReadOptions) -> Sources:
    """``source`` is a JSON file, or a folder whose ``*.json`` files are all read; images are
    found under ``options["images"]`` (default: the JSON's folder) by ``file_name``, else by name.

    Raises:
        DatasetError: no JSON file, one that does not parse, or no image folder.
    """
    files = [source] if source.is_file() else sorted(source.glob("*.json"))
    if not files:
        raise DatasetError(f"no COCO JSON files in {source}")
    annotations, skips = [], []
    for path in files:
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{path}: cannot read COCO JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise DatasetError(f"{path}: expected a JSON object, got {type(data).__name__}")
        parsed, orphans = parse_coco(data, source=str(path))
        annotations.extend(parsed)
        skips.extend(orphans)
    image_root = options["images"] or files[0].parent
    if not image_root.is_dir():
        raise DatasetError(f"image folder {image_root} does not exist")
    return Sources(annotations, skips, ImageIndex(image_root))


def parse_coco(
    data: Mapping[str, Any], *, source: str
) -> tuple[list[SourceAnnotation], list[Skip]]:
    """Parses a loaded COCO JSON document.

    Returns:
        One annotation per image (in the order of ``images``), and the skips that belong to no
        image (annotations whose ``image_id`` is not among the images).

    Raises:
        DatasetError: ``images``, ``annotations`` or ``categories`` is missing or malformed.
    """
    try:
        images = {int(image["id"]): image for image in data["images"]}
        categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        entries = list(data["annotations"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{source}: not a COCO detection file: {exc!r}") from exc
    boxes: dict[int, list[PixelBox]] = defaultdict(list)
    skips: dict[int, list[Skip]] = defaultdict(list)
    orphans: list[Skip] = []
    for number, entry in enumerate(entries):
        where = f"{source} annotation {_describe(entry, number)}"
        image_id = _image_id(entry)
        if image_id not in images:
            orphans.append(Skip(SkipReason.BAD_BOX, where, f"no image with id {image_id!r}"))
            continue
        parsed = _box(entry, categories=categories, where=where)
        if isinstance(parsed, Skip):
            skips[image_id].append(parsed)
        else:
            boxes[image_id].append(parsed)
    return [
        _annotation(image, source=source, boxes=boxes[image_id], skips=skips[image_id])
        for image_id, image in images.items()
    ], orphans


def _annotation(
    image: Mapping[str, Any], *, source: str, boxes: list[PixelBox], skips: list[Skip]
) -> SourceAnnotation:
    file_name = str(image.get("file_name") or "")
    try:
        size: tuple[int, int] | None = (int(image["width"]), int(image["height"]))
    except (KeyError, TypeError, ValueError):
        size = None
    return SourceAnnotation(
        name=PurePath(file_name.replace("\\", "/")).stem if file_name else f"image_{image['id']}",
        source=f"{source} image {image['id']}",
        image=file_name or None,
        size=size if size and size[0] > 0 and size[1] > 0 else None,
        boxes=tuple(boxes),
        skips=tuple(skips),
    )


def _box(entry: Mapping[str, Any], *, categories: Mapping[int, str], where: str) -> PixelBox | Skip:
    if entry.get("iscrowd"):
        return Skip(SkipReason.CROWD, where)
    try:
        x, y, w, h = (float(v) for v in entry["bbox"])
        category = int(entry["category_id"])
    except (KeyError, TypeError, ValueError) as exc:
        return Skip(SkipReason.BAD_BOX, where, f"bbox/category_id: {exc}")
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return Skip(SkipReason.BAD_BOX, where, "bbox is not finite")
    label = categories.get(category, f"category {category}")
    return PixelBox(label, x, y, x + w, y + h, where=where)


def _image_id(entry: Any) -> int | None:
    try:
        return int(entry["image_id"])
    except (KeyError, TypeError, ValueError):
        return None


def _describe(entry: Any, number: int) -> str:
    if isinstance(entry, Mapping) and "id" in entry:
        return f"id {entry['id']}"
    return f"#{number}"
