"""Foreign annotation formats -> YOLO labels: Pascal VOC XML, 14-column oriented boxes, COCO JSON.

Each format module (`voc`, `oriented`, `coco`) has a pure parser that yields `SourceAnnotation`
values and a reader that finds its files (`sources.Reader`); `runner.READERS` names the reader of
each format. `records.to_yolo` resolves classes through a `ClassMap` and normalises the boxes;
`runner.convert` copies or links the images and writes the labels through the shared label module.

Example:
    >>> report = convert("voc", Path("voc-export"), Path("converted"))  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
"""

from __future__ import annotations

from azaion_training.convert.classmap import ClassMap, parse_map_option, parse_skip_option
from azaion_training.convert.coco import parse_coco
from azaion_training.convert.oriented import parse_oriented
from azaion_training.convert.records import PixelBox, SourceAnnotation, to_yolo
from azaion_training.convert.report import ConversionReport, Skip, SkipReason
from azaion_training.convert.runner import FORMATS, convert
from azaion_training.convert.voc import parse_voc

__all__ = [
    "FORMATS",
    "ClassMap",
    "ConversionReport",
    "PixelBox",
    "Skip",
    "SkipReason",
    "SourceAnnotation",
    "convert",
    "parse_coco",
    "parse_map_option",
    "parse_oriented",
    "parse_skip_option",
    "parse_voc",
    "to_yolo",
]
