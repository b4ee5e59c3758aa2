"""The consumer's work ahead of the apply step: `AnnotationConsumer.stage` and `_Ahead`.

The stream tests (test_routing_stream, test_consumer_process) run the whole consumer through
them against a real broker; these pin the two properties the apply step relies on: a staged
check gives exactly what `check` gives, and entries come out in arrival order whatever order
their checks finish in."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from azaion_training.config import QueueSettings
from azaion_training.errors import MessageError
from azaion_training.fs import DataTree
from azaion_training.queue import AnnotationConsumer, AnnotationStatus, encode_message
from azaion_training.queue.consumer import _Ahead
from azaion_training.queue.handlers import Checked
from tests.queue.helpers import bulk, created

GOOD = created("good")
STAGED_CASES = {
    "created": encode_message(GOOD),
    "bulk": encode_message(bulk(AnnotationStatus.DELETED, "a", "b")),
    "corrupt image": encode_message(
        dataclasses.replace(GOOD, image=GOOD.image[:200] + b"\0" * 400)
    ),
    "unsafe name": encode_message(dataclasses.replace(GOOD, name="../escape")),
    "not a message": b"\x00not amqp",
}


@pytest.fixture
def consumer(tmp_path: Path) -> AnnotationConsumer:
    return AnnotationConsumer(QueueSettings(), DataTree(root=tmp_path))


def _outcome(run) -> Checked | str:
    try:
        return run()
    except MessageError as exc:
        return f"MessageError: {exc}"


@pytest.mark.parametrize("case", list(STAGED_CASES))
def test_a_staged_check_equals_the_whole_check(consumer: AnnotationConsumer, case: str) -> None:
    raw = STAGED_CASES[case]
    staged, held = consumer.stage(raw)
    finish = staged if callable(staged) else (lambda: staged)
    expected = _outcome(lambda: consumer.check(raw))
    assert _outcome(finish) == expected
    if case == "created":
        assert isinstance(expected, Checked) and expected.names == ("good",)
        assert held >= len(GOOD.image)  # the decoded image counts against the window's bound
    elif case != "bulk":
        assert isinstance(expected, str)


def test_entries_come_out_in_arrival_order_within_the_bound() -> None:
    count, bound = 6, 3
    finished = [threading.Event() for _ in range(count)]
    done: list[int] = []

    def stage(raw: bytes):
        index = raw[0]

        def work() -> Checked:
            if index % bound < bound - 1:  # within a window, each check waits for the next one
                assert finished[index + 1].wait(timeout=30)
            done.append(index)
            finished[index].set()
            return Checked(message=bulk(AnnotationStatus.DELETED), names=(str(index),))

        return work, 0

    async def main() -> tuple[list[int], list[str], int]:
        with ThreadPoolExecutor(count) as pool:
            ahead = _Ahead(stage, pool, entries=bound, max_bytes=1 << 20)
            most = 0

            async def produce() -> None:
                nonlocal most
                for index in range(count):
                    await ahead.put(bytes([index]), 100 + index)
                    most = max(most, len(ahead._waiting))

            producer = asyncio.create_task(produce())
            offsets, names = [], []
            for _ in range(count):
                _, offset, future, _ = await ahead.get()
                offsets.append(offset)
                names.append(future.result().names[0])
            await producer
            return offsets, names, most

    offsets, names, most = asyncio.run(main())
    assert offsets == [100 + index for index in range(count)]
    assert names == [str(index) for index in range(count)]
    assert most <= bound
    assert done == [2, 1, 0, 5, 4, 3]  # the checks really finished out of order


def test_a_closed_window_drops_what_waits_and_frees_a_waiting_put() -> None:
    async def main() -> list[int]:
        with ThreadPoolExecutor(1) as pool:
            ahead = _Ahead(
                lambda raw: (Checked(message=bulk(AnnotationStatus.DELETED), names=()), 0),
                pool,
                entries=1,
                max_bytes=1 << 20,
            )
            await ahead.put(b"a", 1)
            blocked = asyncio.create_task(ahead.put(b"b", 2))  # no room: waits
            await asyncio.sleep(0)
            assert not blocked.done()
            ahead.close()
            await asyncio.wait_for(blocked, 10)
            return [entry[1] for entry in ahead._waiting]

    assert asyncio.run(main()) == []
