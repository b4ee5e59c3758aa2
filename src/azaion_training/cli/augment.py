"""`azaion-augment`: Turn every validated annotation into 8 training samples."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azaion_training.cli._common import command_parser, not_implemented

PROG = "azaion-augment"


def build_parser() -> argparse.ArgumentParser:
    return command_parser(
        PROG, "Turn every validated annotation into 8 training samples.", env_sections=("augment",)
    )


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return not_implemented(PROG, 4)


if __name__ == "__main__":
    raise SystemExit(main())
