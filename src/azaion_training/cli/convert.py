"""`azaion-convert`: Convert Pascal VOC, oriented-box or COCO annotations to YOLO labels."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azaion_training.cli._common import command_parser, not_implemented

PROG = "azaion-convert"


def build_parser() -> argparse.ArgumentParser:
    return command_parser(
        PROG,
        "Convert Pascal VOC, oriented-box or COCO annotations to YOLO labels.",
        env_sections=(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return not_implemented(PROG, 9)


if __name__ == "__main__":
    raise SystemExit(main())
