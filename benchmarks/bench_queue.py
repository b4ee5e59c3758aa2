"""Queue ingest: messages/s for 2,000 Created messages with ~100 KB JPEGs, from a real stream.

Starts a private RabbitMQ node (tests/services/rabbitmq.py), publishes the messages once, then
consumes the same stream three times into fresh trees, in this order and in one run:

    batched       ours: the position is committed every 200 messages (or 1 s), after one
                  syncfs(2) that makes the batch's files durable
    original      the original's way: offset.yaml rewritten after every message (plain write,
                  no fsync of it or of the data; not crash-safe)
    per-message   the same guarantee as ours with a commit after every message (the files and
                  offset.yaml fsynced each time): what "position after every message" costs
                  when it must never be ahead of the data

Run from the repository root: ``PYTHONPATH=src:. python benchmarks/bench_queue.py``
(``--messages N`` for another count).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from tests.services.rabbitmq import RabbitMQNode

from azaion_training.config import QueueSettings
from azaion_training.demo.world import encode_jpeg, make_scene
from azaion_training.fs import DataTree
from azaion_training.labels import Box
from azaion_training.queue import (
    Annotation,
    AnnotationConsumer,
    AnnotationStatus,
    Detection,
    Role,
    encode_message,
    publish,
)
from azaion_training.queue.offsets import Checkpointer

TARGET_JPEG_BYTES = 100_000


class OriginalCheckpointer(Checkpointer):
    """Writes offset.yaml after every message with a plain write, never flushing the data."""

    def advance(self, offset: int) -> None:
        self._applied = offset
        with open(self.path, "w") as handle:
            yaml.safe_dump({"offset": offset}, handle)

    def commit_if_due(self) -> None:
        pass

    def commit(self) -> None:
        pass


def jpegs(count: int, seed: int = 0) -> list[tuple[bytes, list[Box]]]:
    """``count`` distinct synthetic JPEGs of about 100 KB with their boxes."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(count):
        scene = make_scene(rng, width=640, height=480)
        noisy = np.clip(scene.image + rng.normal(0, 12, scene.image.shape), 0, 255).astype(np.uint8)
        quality = 95
        data = encode_jpeg(noisy, quality)
        while len(data) > TARGET_JPEG_BYTES * 1.1 and quality > 30:
            quality -= 5
            data = encode_jpeg(noisy, quality)
        result.append((data, scene.boxes))
    return result


def messages(count: int) -> list[bytes]:
    pool = jpegs(40)
    entries = []
    for index in range(count):
        image, boxes = pool[index % len(pool)]
        annotation = Annotation(
            status=AnnotationStatus.CREATED,
            name=f"frame_{index:06d}",
            image_extension=".jpg",
            detections=tuple(Detection(box=box) for box in boxes),
            role=Role.VALIDATOR if index % 2 else Role.OPERATOR,
            image=image,
        )
        entries.append(encode_message(annotation))
    return entries


def consume(settings: QueueSettings, root: Path, *, last: int, original: bool) -> float:
    """Seconds from start until message ``last`` is applied (durable, for our variants)."""
    os.sync()
    consumer = AnnotationConsumer(settings, DataTree(root=root))
    if original:
        consumer.checkpoint = OriginalCheckpointer(
            consumer.tree.offset_file, stream=settings.stream, writes=consumer.writes
        )

    async def run() -> float:
        started = time.perf_counter()
        task = asyncio.create_task(consumer.run())
        while (consumer.checkpoint.applied or -1) < last:
            if task.done():
                await task
                raise RuntimeError("the consumer stopped early")
            await asyncio.sleep(0.001)
        if not original:
            consumer.checkpoint.commit()  # the tail of the last batch
        seconds = time.perf_counter() - started
        consumer.stop()
        await task
        return seconds

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as folder:
        base = Path(folder)
        entries = messages(args.messages)
        size = sum(map(len, entries)) / len(entries)
        with RabbitMQNode.create(base / "rabbitmq") as node:
            common = {
                "host": "127.0.0.1",
                "port": node.stream_port,
                "user": node.user,
                "password": node.password,
                "stream": "bench",
            }
            asyncio.run(publish(entries, settings=QueueSettings(**common)))
            print(f"{len(entries)} Created messages, {size / 1000:.0f} KB each on average")
            last = len(entries) - 1
            results = {
                "batched": consume(
                    QueueSettings(**common), base / "batched", last=last, original=False
                ),
                "original": consume(
                    QueueSettings(**common), base / "original", last=last, original=True
                ),
                "per-message": consume(
                    QueueSettings(**common, commit_every=1),
                    base / "per-message",
                    last=last,
                    original=False,
                ),
            }
        for name, seconds in results.items():
            print(f"{name:<12} {seconds:7.2f} s  {len(entries) / seconds:8.0f} messages/s")
        print(f"ratio batched / original:    {results['original'] / results['batched']:.2f}x")
        print(f"ratio batched / per-message: {results['per-message'] / results['batched']:.2f}x")


if __name__ == "__main__":
    main()
