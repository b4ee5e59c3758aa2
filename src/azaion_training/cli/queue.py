"""`azaion-queue`: Consume annotation events from the RabbitMQ stream into the data tree."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from azaion_training.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    command_parser,
    queue_options,
    run,
)
from azaion_training.config import Settings
from azaion_training.fs import DataTree
from azaion_training.queue import AnnotationConsumer, run_until_signalled

PROG = "azaion-queue"

DESCRIPTION = """\
Consume annotation events from the RabbitMQ stream into the data tree.

Created/Edited annotations by Validator, Admin or ApiAdmin go to data/, by anyone else to
data-seed/; Validated moves data-seed/ -> data/, Deleted moves to data_deleted/. Bad messages are
kept whole in queue-rejected/ with a reason. The position is kept in offset.yaml (resumed on
start). It reconnects when RabbitMQ goes away; SIGTERM or Ctrl-C stop it after the message in hand
(exit 0, position saved)."""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("queue",))
    queue_options(parser, commits=True)
    return parser


def consume(args: argparse.Namespace, settings: Settings) -> int:
    tree = DataTree.from_settings(settings)
    consumer = AnnotationConsumer(settings.queue, tree, variants=settings.augment.variants)
    try:
        stats = run_until_signalled(consumer)
    except asyncio.CancelledError:
        print(f"{PROG}: stopped at once (second signal); position saved", flush=True)
        return EXIT_INTERRUPTED
    print(f"{PROG}: {stats.summary(consumer.checkpoint.committed)}", flush=True)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, consume, require=("queue.user", "queue.password"))


if __name__ == "__main__":
    raise SystemExit(main())
