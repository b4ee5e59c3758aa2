"""Pascal VOC XML -> `SourceAnnotation`: `parse_voc` (pure) and `read_voc` (the files).

One XML file describes one image::

    <annotation>
      <filename>frame_1.jpg</filename>
      <size><width>640</width><height>480</height><depth>3</depth></size>
      <object>
        <name>Truck</name>
        <bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110</xmax><ymax>80</ymax></bndbox>
      </object>
    </annotation>

Box coordinates are read as pixel positions on a continuous axis, exactly as written (integers or
decimals, no 1-based shift): ``xmin=10, xmax=110`` on a 640-pixel-wide image gives
``cx = 60/640``, ``w = 100/640``. The output name is the stem of ``<filename>`` (of the XML file
when ``<filename>`` is absent). An object whose ``<bndbox>`` is missing or not numeric is skipped
and reported; an XML that does not parse is an error.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path, PurePath

from azaion_training.convert.records import PixelBox, SourceAnnotation
from azaion_training.convert.report import Skip, SkipReason
from azaion_training.convert.sources import ImageIndex, ReadOptions, Sources, annotation_files
from azaion_training.errors import DatasetError

_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def read_voc(source: Path, options: ReadOptions) -> Sources:
    """Every ``*.xml`` under ``source``; each image by ``<filename>`` anywhere under ``source``
    (preferring the XML's own folder), else by the XML's stem. An XML that does not parse is
    skipped and reported."""
    files = annotation_files(source, "*.xml", options.excluded, what="Pascal VOC XML")
    annotations, skips = [], []
    for path in files:
        try:
            annotations.append(parse_voc(path.read_bytes(), source=str(path)))
        except (DatasetError, OSError) as exc:
            skips.append(Skip(SkipReason.BAD_ANNOTATION, str(path), str(exc)))
    return Sources(annotations, skips, ImageIndex(source, excluded=options.excluded))


def parse_voc(text: str | bytes, *, source: str) -> SourceAnnotation:
    """Parses one VOC XML document.

    Args:
        text: the XML.
        source: the XML file's path (for reports; its stem names the output when the XML has
            no ``<filename>``).

    Raises:
        DatasetError: the text is not XML, or its root is not ``<annotation>``.
    """
    try:
        # Expat (>= 2.4) bounds entity expansion and ElementTree never fetches external entities.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise DatasetError(f"{source}: not valid XML: {exc}") from exc
    if root.tag != "annotation":
        raise DatasetError(f"{source}: root element is <{root.tag}>, expected <annotation>")
    filename = (root.findtext("filename") or "").strip() or None
    name = PurePath(filename.replace("\\", "/")).stem if filename else PurePath(source).stem
    boxes: list[PixelBox] = []
    skips: list[Skip] = []
    for number, element in enumerate(root.iter("object"), start=1):
        where = f"{source} object {number}"
        label = (element.findtext("name") or "").strip()
        corners = _corners(element.find("bndbox"))
        if not label or corners is None:
            problem = "no <name>" if not label else "missing or non-numeric <bndbox>"
            skips.append(Skip(SkipReason.BAD_BOX, where, problem))
            continue
        boxes.append(PixelBox(label, *corners, where=where))
    return SourceAnnotation(
        name=name,
        source=source,
        image=filename,
        size=_size(root.find("size")),
        boxes=tuple(boxes),
        skips=tuple(skips),
    )


def _corners(bndbox: ET.Element | None) -> tuple[float, float, float, float] | None:
    if bndbox is None:
        return None
    try:
        values = tuple(float((bndbox.findtext(tag) or "").strip()) for tag in _CORNERS)
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    x1, y1, x2, y2 = values
    return x1, y1, x2, y2


def _size(size: ET.Element | None) -> tuple[int, int] | None:
    """``(width, height)`` from ``<size>``, or ``None`` when absent, zero or not numeric."""
    if size is None:
        return None
    try:
        width = int(float((size.findtext("width") or "").strip()))
        height = int(float((size.findtext("height") or "").strip()))
    except ValueError:
        return None
    return (width, height) if width > 0 and height > 0 else None
