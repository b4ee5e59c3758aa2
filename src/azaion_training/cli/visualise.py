"""`azaion-visualise`: Draw a dataset's images with their boxes, and its statistics."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azaion_training.cli._common import command_parser, not_implemented

PROG = "azaion-visualise"


def build_parser() -> argparse.ArgumentParser:
    return command_parser(
        PROG, "Draw a dataset's images with their boxes, and its statistics.", env_sections=()
    )


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return not_implemented(PROG, 9)


if __name__ == "__main__":
    raise SystemExit(main())
