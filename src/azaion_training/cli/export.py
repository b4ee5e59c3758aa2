"""`azaion-export`: Export a trained .pt model to ONNX, a TensorRT engine or RKNN."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azaion_training.cli._common import command_parser, not_implemented

PROG = "azaion-export"


def build_parser() -> argparse.ArgumentParser:
    return command_parser(
        PROG,
        "Export a trained .pt model to ONNX, a TensorRT engine or RKNN.",
        env_sections=("export",),
    )


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return not_implemented(PROG, 6)


if __name__ == "__main__":
    raise SystemExit(main())
