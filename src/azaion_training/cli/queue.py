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
from azaion_training.queue.consumer import Start

PROG = "azaion-queue"

DESCRIPTION = """\
Consume annotation events from the RabbitMQ stream into the data tree.

Created/Edited annotations by Validator, Admin or ApiAdmin go to data/, by anyone else to
data-seed/; Validated moves data-seed/ -> data/, Deleted moves to data_deleted/. Bad messages are
kept whole in queue-rejected/ with a reason. The position is kept in offset.yaml (resumed on
start). It reconnects when RabbitMQ goes away; SIGTERM or Ctrl-C stop it after the message in hand
(exit 0, position saved).

The position is checked against the stream first: if the stream was deleted and re-created, or
the position is past its end, it stops (exit 1) and names the choice: --from first, last or an
offset. Messages deleted by the stream's retention before they were consumed are reported with
the lost range."""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("queue",))
    queue_options(parser, commits=True)
    parser.add_argument(
        "--from",
        dest="start",
        type=_start,
        metavar="first|last|OFFSET",
        help="start here instead of the stored position: the stream's first message (a full "
        "replay; safe, handlers are idempotent), only messages published from now on, or an "
        "offset; for when the stored position does not fit the stream (it says so)",
    )
    return parser


def _start(text: str) -> Start:
    if text in ("first", "last"):
        return text  # type: ignore[return-value]
    try:
        offset = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected first, last or an offset") from None
    if offset < 0:
        raise argparse.ArgumentTypeError("an offset is 0 or more")
    return offset


def consume(args: argparse.Namespace, settings: Settings) -> int:
    tree = DataTree.from_settings(settings)
    consumer = AnnotationConsumer(
        settings.queue, tree, variants=settings.augment.variants, start=args.start
    )
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
