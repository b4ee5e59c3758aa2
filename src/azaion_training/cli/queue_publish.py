"""`azaion-queue-publish`: Publish annotation messages from a folder, as the platform does."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from azaion_training.cli._common import EXIT_OK, command_parser, queue_options, run
from azaion_training.config import Settings
from azaion_training.errors import MessageError
from azaion_training.queue.messages import AnnotationStatus, Role
from azaion_training.queue.producer import folder_messages, publish

PROG = "azaion-queue-publish"

DESCRIPTION = """\
Publish annotation messages from a folder of images and YOLO labels to the RabbitMQ stream,
in the annotation platform's format (AMQP property AnnotationStatus, MessagePack body).

FOLDER holds images/ and labels/, or images each beside its .txt label. Created and Edited send
one message per image; Validated and Deleted send one bulk message naming every image."""


def _choice(enum: type[AnnotationStatus] | type[Role]):  # type: ignore[no-untyped-def]
    def parse(text: str) -> AnnotationStatus | Role:
        try:
            return enum.parse(text, what=enum.__name__)
        except MessageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = enum.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("queue",))
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="images and labels to send")
    message = parser.add_argument_group("message options")
    message.add_argument(
        "--status",
        type=_choice(AnnotationStatus),
        default=AnnotationStatus.CREATED,
        metavar="STATUS",
        help="created (default), edited, validated or deleted",
    )
    message.add_argument(
        "--role",
        type=_choice(Role),
        default=Role.VALIDATOR,
        metavar="ROLE",
        help="operator, validator (default), companionpc, admin or apiadmin",
    )
    message.add_argument("--email", metavar="EMAIL", help="the author's e-mail in each message")
    message.add_argument("--gzip", action="store_true", help="gzip each message body")
    message.add_argument(
        "--with-image",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send image bytes with Edited messages too (Created always carries them)",
    )
    queue_options(parser)
    return parser


def send(args: argparse.Namespace, settings: Settings) -> int:
    total, messages = folder_messages(
        args.folder,
        status=args.status,
        role=args.role,
        email=args.email,
        with_image=args.with_image,
        compress=args.gzip,
    )
    entries = tqdm(messages, total=total, unit="msg", desc="publish")
    count = asyncio.run(publish(entries, settings=settings.queue))
    print(
        f"{PROG}: published {count} {args.status.wire_name} message(s) to "
        f"{settings.queue.stream!r} at {settings.queue.host}:{settings.queue.port}"
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, send, require=("queue.user", "queue.password"))


if __name__ == "__main__":
    raise SystemExit(main())
