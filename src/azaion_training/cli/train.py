"""`azaion-train`: Form a dated dataset, train YOLO, export ONNX and publish the model."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azaion_training.cli._common import command_parser, not_implemented

PROG = "azaion-train"


def build_parser() -> argparse.ArgumentParser:
    return command_parser(
        PROG,
        "Form a dated dataset, train YOLO, export ONNX and publish the model.",
        env_sections=("training", "dataset", "export"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return not_implemented(PROG, 5)


if __name__ == "__main__":
    raise SystemExit(main())
