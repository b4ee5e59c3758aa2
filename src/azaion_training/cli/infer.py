"""`azaion-infer`: Run a model over a video and write detections and an annotated video."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azaion_training.cli._common import command_parser, not_implemented

PROG = "azaion-infer"


def build_parser() -> argparse.ArgumentParser:
    return command_parser(
        PROG,
        "Run a model over a video and write detections and an annotated video.",
        env_sections=("infer",),
    )


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return not_implemented(PROG, 8)


if __name__ == "__main__":
    raise SystemExit(main())
