"""`azaion-convert`: Convert Pascal VOC, oriented-box or COCO annotations to YOLO labels."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from azaion_training.cli._common import EXIT_ERROR, EXIT_OK, command_parser, run, setting
from azaion_training.config import Settings
from azaion_training.convert import convert
from azaion_training.convert.classmap import class_map_from_options
from azaion_training.convert.runner import READERS

PROG = "azaion-convert"

DESCRIPTION = """\
Convert Pascal VOC, oriented-box or COCO annotations to YOLO labels.

DEST receives images/ (copied, or hard-linked with --link) and labels/ (one YOLO label per image).
Class names are matched case-insensitively: first --skip, then --map, then the default map
(Truck=1, Car=2, Taxi=2, Motorcycle skipped), then our own class names (Vehicle, Truck(Wint), ...).
Boxes of unknown classes, boxes outside the image and boxes without area are reported and left
out; annotations whose image is missing are reported and skipped. Exit code 0 when anything was
converted, 1 when nothing was (or on an error).

formats:
  voc       every *.xml under SRC; images found by <filename> under SRC
  oriented  every *.txt under SRC: 14 columns per box, corners in columns 6-13 (0-based,
            x1 x2 x3 x4 y1 y2 y3 y4 by default); the class code in column 3 (VEDAI codes:
            1 car, 2 truck, 7 motorcycle, 9 van, 11 pickup, ...); images found by the file stem
  coco      SRC is a COCO JSON file (or a folder of them); images under --images
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("convert",))
    parser.add_argument("format", choices=list(READERS), help="the source format")
    parser.add_argument("source", type=Path, metavar="SRC", help="the annotations to convert")
    parser.add_argument("dest", type=Path, metavar="DEST", help="folder for images/ and labels/")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="NAME=ID,...",
        help="map class names to class ids (0..79), over the defaults; may be repeated",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="NAME,...",
        help="leave boxes of these class names out (reported as skipped); may be repeated",
    )
    parser.add_argument(
        "--link", action="store_true", help="hard-link images instead of copying them"
    )
    setting(
        parser,
        "--unknown",
        key="convert.unknown_classes",
        choices=("skip", "error"),
        help="unknown class names: skip the boxes and report them, or stop before writing anything",
    )
    parser.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="coco: the folder the file_name entries are relative to (default: the JSON's folder)",
    )
    parser.add_argument(
        "--corner-order",
        choices=("xxxxyyyy", "xyxyxyxy"),
        default="xxxxyyyy",
        help="oriented: how columns 6-13 hold the four corners (default xxxxyyyy)",
    )
    return parser


def run_convert(args: argparse.Namespace, settings: Settings) -> int:
    report = convert(
        args.format,
        args.source,
        args.dest,
        class_map=class_map_from_options(args.map, args.skip),
        link=args.link,
        unknown_classes=settings.convert.unknown_classes,
        edge_tolerance_px=settings.convert.edge_tolerance_px,
        corner_order=args.corner_order,
        images=args.images,
        progress=sys.stderr.isatty(),
    )
    print(report.summary())
    if report.images == 0:
        print(f"{PROG}: error: nothing was converted", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, run_convert)


if __name__ == "__main__":
    raise SystemExit(main())
