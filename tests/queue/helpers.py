"""Helpers of the queue tests: message factories, an in-process consumer run, tree snapshots."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from azaion_training.config import QueueSettings
from azaion_training.demo.world import encode_jpeg, make_scene
from azaion_training.errors import QueueError
from azaion_training.fs import DataTree
from azaion_training.labels import Box
from azaion_training.queue import (
    Annotation,
    AnnotationConsumer,
    AnnotationStatus,
    BulkAnnotations,
    Detection,
    Role,
    publish,
)
from azaion_training.queue.messages import utc_now
from tests.services.rabbitmq import RabbitMQNode


def node_settings(node: RabbitMQNode, *, stream: str, **fields: object) -> QueueSettings:
    return node.queue_settings(
        stream=stream,
        commit_interval_s=0.2,
        reconnect_initial_s=0.2,
        reconnect_max_s=1.0,
        probe_interval_s=2.0,
        **fields,
    )


def jpeg(seed: int, size: int = 64) -> tuple[bytes, list[Box]]:
    """A small synthetic JPEG and its boxes."""
    scene = make_scene(np.random.default_rng(seed), width=size, height=size, objects=(1, 3))
    return encode_jpeg(scene.image), scene.boxes


def created(
    name: str, *, role: Role = Role.VALIDATOR, seed: int = 0, status=AnnotationStatus.CREATED
) -> Annotation:
    """A Created (or Edited) annotation with a 64x64 JPEG."""
    image, boxes = jpeg(seed)
    return Annotation(
        status=status,
        name=name,
        image_extension=".jpg",
        detections=tuple(Detection(box=box, confidence=0.9) for box in boxes),
        role=role,
        image=image,
        created_date=utc_now(),
        original_media_name="flight.mp4",
        time_ticks=12_340_000,
        email="annotator@example.com",
    )


def edited(
    name: str, *, role: Role, boxes: Iterable[Box], image: bytes | None = None
) -> Annotation:
    return Annotation(
        status=AnnotationStatus.EDITED,
        name=name,
        image_extension=".jpg",
        detections=tuple(Detection(box=box) for box in boxes),
        role=role,
        image=image,
    )


def bulk(status: AnnotationStatus, *names: str) -> BulkAnnotations:
    return BulkAnnotations(status=status, names=names, email="validator@example.com")


def wait_until_publishable(settings: QueueSettings, *, timeout: float = 60.0) -> None:
    """Waits until the stream accepts publishers (after a broker restart its leader needs a
    moment after the ports open)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(publish([], settings=settings))
            return
        except QueueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def publish_entries(entries: Iterable[bytes], settings: QueueSettings) -> int:
    return asyncio.run(publish(list(entries), settings=settings))


def consume_until(
    settings: QueueSettings, tree: DataTree, *, last_offset: int, timeout: float = 60.0
) -> AnnotationConsumer:
    """Runs a consumer in this process until it has applied ``last_offset``, then stops it."""
    consumer = AnnotationConsumer(settings, tree)

    async def main() -> None:
        task = asyncio.create_task(consumer.run())
        deadline = asyncio.get_running_loop().time() + timeout
        while _applied(consumer) < last_offset and not task.done():
            if asyncio.get_running_loop().time() > deadline:
                consumer.stop()
                await task
                raise AssertionError(f"consumer reached {consumer.checkpoint.applied} only")
            await asyncio.sleep(0.05)
        consumer.stop()
        await task

    asyncio.run(main())
    return consumer


def _applied(consumer: AnnotationConsumer) -> int:
    applied = consumer.checkpoint.applied
    return -1 if applied is None else applied


def snapshot(tree: DataTree) -> dict[str, str]:
    """Every visible file of the annotation folders and rejects: relative path -> SHA-256."""
    files = {}
    folders = [*(d.path for d in tree.annotation_dirs()), tree.queue_rejected]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                files[str(path.relative_to(tree.root))] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return files


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}
