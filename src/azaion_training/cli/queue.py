"""`azaion-queue`: Consume annotation events from the RabbitMQ stream into the data tree."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azaion_training.cli._common import command_parser, not_implemented

PROG = "azaion-queue"


def build_parser() -> argparse.ArgumentParser:
    return command_parser(
        PROG,
        "Consume annotation events from the RabbitMQ stream into the data tree.",
        env_sections=("queue",),
    )


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return not_implemented(PROG, 3)


if __name__ == "__main__":
    raise SystemExit(main())
