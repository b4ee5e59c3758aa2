"""`azaion-queue`: Consume annotation events from the RabbitMQ stream into the data tree."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from azaion_training.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    command_parser,
    run_command,
    start,
)
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
    queue = parser.add_argument_group("queue options")
    queue.add_argument("--host", metavar="HOST", help="RabbitMQ host (RABBITMQ_HOST)")
    queue.add_argument("--port", type=int, metavar="PORT", help="streams port (RABBITMQ_PORT)")
    queue.add_argument("--stream", metavar="NAME", help="stream name (RABBITMQ_QUEUE_NAME)")
    queue.add_argument(
        "--commit-every",
        type=int,
        metavar="N",
        help="save the position after at most N messages (default 200)",
    )
    queue.add_argument(
        "--commit-interval",
        type=float,
        metavar="SECONDS",
        help="... and at least every SECONDS while messages arrive (default 1)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        settings = start(
            args,
            overrides={
                "queue.host": args.host,
                "queue.port": args.port,
                "queue.stream": args.stream,
                "queue.commit_every": args.commit_every,
                "queue.commit_interval_s": args.commit_interval,
            },
            require=("queue.user", "queue.password"),
        )
        tree = DataTree.from_settings(settings)
        consumer = AnnotationConsumer(settings.queue, tree, variants=settings.augment.variants)
        try:
            stats = run_until_signalled(consumer)
        except asyncio.CancelledError:
            print(f"{PROG}: stopped at once (second signal); position saved", flush=True)
            return EXIT_INTERRUPTED
        print(f"{PROG}: {stats.summary(consumer.checkpoint.committed)}", flush=True)
        return EXIT_OK

    return run_command(PROG, body)


if __name__ == "__main__":
    raise SystemExit(main())
