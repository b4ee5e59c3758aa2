"""Publishing annotation messages in the platform's format (for operators, tests and benchmarks).

The annotation platform is the real producer of the stream; this module does what it does, from
a folder of images and YOLO labels, so that a tree can be seeded, an event replayed or the
consumer tested against a real RabbitMQ.

A folder is either an annotation folder (``images/`` beside ``labels/``) or a flat folder with
each image next to its ``.txt`` label. An image without a label has no boxes.

Example:
    >>> messages = annotations_from_folder(Path("shots"), role=Role.VALIDATOR)  # doctest: +SKIP
    >>> entries = [encode_message(m) for m in messages]  # doctest: +SKIP
    >>> asyncio.run(publish(entries, settings=settings.queue))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from rstream import ConfirmationStatus, Producer
from rstream.exceptions import ClientError, ServerError

from azaion_training.config import QueueSettings
from azaion_training.errors import ConfigError, QueueError
from azaion_training.fs import is_temporary
from azaion_training.labels import read_label
from azaion_training.queue.connection import connection_arguments
from azaion_training.queue.handlers import IMAGE_EXTENSIONS
from azaion_training.queue.messages import (
    Annotation,
    AnnotationStatus,
    BulkAnnotations,
    Detection,
    Role,
    Source,
    utc_now,
)
from azaion_training.queue.wire import (
    BULK_STATUSES,
    IMAGE_STATUSES,
    SINGLE_STATUSES,
    encode_message,
)

logger = logging.getLogger(__name__)

MAX_UNCONFIRMED = 1000
"""Messages in flight before `publish` waits for the broker's confirmations."""

_CONFIRM_TIMEOUT_S = 60.0


def image_files(folder: Path) -> list[Path]:
    """The images of a folder (its ``images/`` if there is one), sorted by name."""
    images = folder / "images" if (folder / "images").is_dir() else folder
    return sorted(
        path
        for path in images.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not is_temporary(path)
    )


def annotations_from_folder(
    folder: Path,
    *,
    status: AnnotationStatus = AnnotationStatus.CREATED,
    role: Role = Role.VALIDATOR,
    email: str | None = None,
    with_image: bool | None = None,
) -> Iterator[Annotation]:
    """One Created or Edited message per image of ``folder``.

    Args:
        folder: an annotation folder or a flat folder of images and labels.
        status: Created or Edited.
        role: the author's role (decides ``data/`` or ``data-seed/``).
        email: the author's e-mail.
        with_image: send the image bytes; by default for Created only.

    Raises:
        LabelError: a label file is invalid.
    """
    if status not in SINGLE_STATUSES:
        raise ValueError(f"{status.wire_name} is a bulk message: use bulk_from_folder")
    send_image = status in IMAGE_STATUSES if with_image is None else with_image
    labels = folder / "labels" if (folder / "labels").is_dir() else None
    for image in image_files(folder):
        label = (labels or image.parent) / f"{image.stem}.txt"
        boxes = read_label(label) if label.is_file() else []
        yield Annotation(
            status=status,
            name=image.stem,
            image_extension=image.suffix.lower(),
            detections=tuple(Detection(box=box) for box in boxes),
            role=role,
            image=image.read_bytes() if send_image else None,
            created_date=utc_now(),
            original_media_name=image.name,
            time_ticks=0,
            email=email,
            source=Source.MANUAL,
        )


def bulk_from_folder(
    folder: Path, *, status: AnnotationStatus, email: str | None = None
) -> BulkAnnotations:
    """One Validated or Deleted message naming every image of ``folder``."""
    if status not in BULK_STATUSES:
        raise ValueError(f"{status.wire_name} is not a bulk message: use annotations_from_folder")
    names = tuple(image.stem for image in image_files(folder))
    return BulkAnnotations(status=status, names=names, email=email, created_date=utc_now())


def folder_messages(
    folder: Path,
    *,
    status: AnnotationStatus,
    role: Role = Role.VALIDATOR,
    email: str | None = None,
    with_image: bool | None = None,
    compress: bool = False,
) -> tuple[int, Iterator[bytes]]:
    """The encoded messages that send ``folder`` with ``status``, and how many there are.

    Created and Edited send one message per image (`annotations_from_folder`); Validated and
    Deleted one bulk message naming every image (`bulk_from_folder`). The messages are made as
    they are read, so a big folder is never held in memory.

    Args:
        compress: gzip each message body.
        role, with_image: of Created and Edited messages.

    Raises:
        ConfigError: ``folder`` is not a folder.
    """
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder")
    if status in BULK_STATUSES:
        bulk = bulk_from_folder(folder, status=status, email=email)
        return 1, iter([encode_message(bulk, compress=compress)])
    annotations = annotations_from_folder(
        folder, status=status, role=role, email=email, with_image=with_image
    )
    encoded = (encode_message(annotation, compress=compress) for annotation in annotations)
    return len(image_files(folder)), encoded


def review_messages(folder: Path, *, operator_share: int) -> list[bytes]:
    """A folder's annotations as the platform sends them when some need review, as raw entries.

    Every ``operator_share``-th annotation is Created by an Operator (so it lands in
    ``data-seed/``) and the others by a Validator; a last bulk Validated message names the
    Operator's annotations, which moves them to ``data/``. Every second entry is compressed.
    """
    raws: list[bytes] = []
    operators: list[str] = []
    for index, message in enumerate(annotations_from_folder(folder, role=Role.VALIDATOR)):
        if operator_share and index % operator_share == operator_share - 1:
            message = replace(message, role=Role.OPERATOR)
            operators.append(message.name)
        raws.append(encode_message(message, compress=index % 2 == 1))
    if operators:
        bulk = BulkAnnotations(status=AnnotationStatus.VALIDATED, names=tuple(operators))
        raws.append(encode_message(bulk))
    return raws


async def publish(
    entries: Iterable[bytes], *, settings: QueueSettings, create_stream: bool = True
) -> int:
    """Publishes raw AMQP entries (see `encode_message`) and waits for the broker to confirm.

    Entries go out in batches that fit a frame; at most `MAX_UNCONFIRMED` wait for confirmation
    at a time.

    Args:
        entries: raw AMQP 1.0 messages, sent byte for byte.
        settings: the ``queue`` settings (server, credentials, stream).
        create_stream: create the stream first if it does not exist.

    Returns:
        How many entries were published and confirmed.

    Raises:
        QueueError: the broker cannot be reached, or refused or did not confirm a message.
    """
    try:
        return await _publish(entries, settings=settings, create_stream=create_stream)
    except (OSError, asyncio.TimeoutError, ServerError, ClientError) as exc:
        raise QueueError(
            f"cannot publish to {settings.host}:{settings.port}: {type(exc).__name__} {exc}"
        ) from exc


async def _publish(
    entries: Iterable[bytes], *, settings: QueueSettings, create_stream: bool
) -> int:
    confirmed = asyncio.Condition()
    state = {"sent": 0, "confirmed": 0, "refused": 0}

    async def on_confirm(status: ConfirmationStatus) -> None:
        async with confirmed:
            state["confirmed" if status.is_confirmed else "refused"] += 1
            confirmed.notify_all()

    async def wait_until(outstanding: int) -> None:
        async with confirmed:
            await asyncio.wait_for(
                confirmed.wait_for(
                    lambda: state["sent"] - state["confirmed"] - state["refused"] <= outstanding
                ),
                _CONFIRM_TIMEOUT_S,
            )

    async with Producer(**connection_arguments(settings, name="azaion-queue-publish")) as producer:
        if create_stream:
            await producer.create_stream(settings.stream, exists_ok=True)
        limit = (await producer.default_client).frame_max // 2
        for batch in _batches(entries, limit=limit):
            await wait_until(MAX_UNCONFIRMED - len(batch))
            state["sent"] += len(batch)
            await producer.send_batch(settings.stream, batch, on_publish_confirm=on_confirm)
        await wait_until(0)
    if state["refused"]:
        raise QueueError(f"the broker refused {state['refused']} of {state['sent']} messages")
    logger.info("published %d messages to %r", state["confirmed"], settings.stream)
    return state["confirmed"]


async def delete_stream(settings: QueueSettings) -> None:
    """Deletes the stream ``settings.stream`` (for temporary streams, such as the demo's).

    Raises:
        QueueError: the broker cannot be reached or refused.
    """
    try:
        async with Producer(**connection_arguments(settings, name="azaion-queue-admin")) as admin:
            await admin.delete_stream(settings.stream)
    except (OSError, asyncio.TimeoutError, ServerError, ClientError) as exc:
        raise QueueError(
            f"cannot delete stream {settings.stream!r}: {type(exc).__name__} {exc}"
        ) from exc


def _batches(entries: Iterable[bytes], *, limit: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    for entry in entries:
        if batch and size + len(entry) > limit:
            yield batch
            batch, size = [], 0
        batch.append(bytes(entry))
        size += len(entry)
    if batch:
        yield batch
