"""Queue ingest: messages/s for 2,000 Created messages with ~100 KB JPEGs, from a real stream.

Starts a private RabbitMQ node (tests/services/rabbitmq.py), publishes the messages once, then
consumes the same stream into fresh trees, ``--repeat`` interleaved rounds of:

    batched       ours: the position is committed every 200 messages (or 1 s), after one
                  syncfs(2) that makes the batch's files durable
    original      the original's way: offset.yaml rewritten after every message (plain write,
                  no fsync of it or of the data; not crash-safe)
    per-message   the same guarantee as ours with a commit after every message (the files and
                  offset.yaml fsynced each time): what "position after every message" costs
                  when it must never be ahead of the data
    raw stream    the stream client alone: each message received and counted, nothing decoded
                  or written (the ceiling the client library and the broker allow)

The median of each counts, as wall-clock messages/s and as messages per CPU-second of this
process (the consumer runs in it; the broker does not), which says more on a loaded machine.

Run from the repository root: ``PYTHONPATH=src:. python benchmarks/bench_queue.py``
(``--messages N`` for another count, ``--json PATH`` to write the medians for ``run_all.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
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
    BulkAnnotations,
    Detection,
    Role,
    encode_message,
    publish,
)
from azaion_training.queue.handlers import Checked
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


class RawConsumer(AnnotationConsumer):
    """Receives and counts: no decoding, no files (the position is still committed)."""

    def stage(self, raw: bytes) -> tuple[Checked, int]:
        nothing = BulkAnnotations(status=AnnotationStatus.DELETED, names=())
        return Checked(message=nothing, names=()), 0

    def handle(self, raw: bytes, offset: int, checked: Callable[[], Checked] | None = None) -> None:
        self.checkpoint.advance(offset)


VARIANTS = ("batched", "original", "per-message", "raw stream")


def consume(settings: QueueSettings, root: Path, *, last: int, variant: str) -> tuple[float, float]:
    """Wall and CPU seconds from start until message ``last`` is applied (durable, for ours)."""
    os.sync()
    tree = DataTree(root=root)
    if variant == "raw stream":
        consumer: AnnotationConsumer = RawConsumer(settings, tree)
    else:
        consumer = AnnotationConsumer(settings, tree)
    original = variant == "original"
    if original:
        consumer.checkpoint = OriginalCheckpointer(
            consumer.tree.offset_file, stream=settings.stream, writes=consumer.writes
        )

    async def run() -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        task = asyncio.create_task(consumer.run())
        while (consumer.checkpoint.applied or -1) < last:
            if task.done():
                await task
                raise RuntimeError("the consumer stopped early")
            await asyncio.sleep(0.001)
        if not original:
            consumer.checkpoint.commit()  # the tail of the last batch
        seconds = time.perf_counter() - started, time.process_time() - cpu
        consumer.stop()
        await task
        return seconds

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median of each counts")
    parser.add_argument("--json", type=Path, default=None, help="write the medians here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as folder:
        base = Path(folder)
        entries = messages(args.messages)
        size = sum(map(len, entries)) / len(entries)
        wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
        cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
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
            for round_ in range(args.repeat):
                for name in VARIANTS:
                    every = {"commit_every": 1} if name == "per-message" else {}
                    root = base / f"{name.replace(' ', '-')}-{round_}"
                    settings = QueueSettings(**common, **every)
                    seconds, used = consume(settings, root, last=len(entries) - 1, variant=name)
                    wall[name].append(seconds)
                    cpu[name].append(used)
                    print(
                        f"round {round_ + 1} {name:<12} {seconds:7.2f} s "
                        f"{len(entries) / seconds:7.0f} msg/s   cpu {used:6.2f} s "
                        f"{len(entries) / used:7.0f} msg/cpu-s"
                    )
    rates = {
        what: {name: len(entries) / statistics.median(table[name]) for name in VARIANTS}
        for what, table in (("wall", wall), ("cpu", cpu))
    }
    for what, unit in (("wall", "msg/s"), ("cpu", "msg/cpu-s")):
        r = rates[what]
        print(
            f"{what:<4} (median of {args.repeat}): "
            + " | ".join(f"{name} {r[name]:.0f}" for name in VARIANTS)
            + f" {unit}; batched / original = {r['batched'] / r['original']:.2f}x, "
            f"batched / per-message = {r['batched'] / r['per-message']:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps({"messages": len(entries), "bytes": size, **rates}))


if __name__ == "__main__":
    main()
