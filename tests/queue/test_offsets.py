"""offset.yaml and batched commits: atomic, never ahead of the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.errors import QueueError
from azaion_training.queue.durability import WriteBatch
from azaion_training.queue.offsets import (
    Checkpointer,
    Position,
    load_offset,
    load_position,
    save_offset,
)


class RecordingBatch(WriteBatch):
    """A real write batch that also records when it was flushed, relative to offset saves."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def flush(self) -> None:
        self.events.append(f"flush {len(self)}")
        super().flush()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),  # no file: start from the beginning
        ("stream: s\noffset: 41\n", 41),  # our format
        ("offset: 7\n", 7),  # no stream named
        ("12\n", 12),  # a bare number
        ("stream: s\noffset: 3\ntimestamp: 1700000000000\n", 3),  # with the identity
    ],
)
def test_load_offset(tmp_path: Path, text: str | None, expected: int | None) -> None:
    path = tmp_path / "offset.yaml"
    if text is not None:
        path.write_text(text)
    assert load_offset(path, stream="s") == expected


@pytest.mark.parametrize(
    "text", ["offset: [1\n", "offset: ten\n", "- 1\n", "true\n", "offset: 1\ntimestamp: x\n"]
)
def test_unreadable_offset_names_the_file_and_the_remedy(tmp_path: Path, text: str) -> None:
    path = tmp_path / "offset.yaml"
    path.write_text(text)
    with pytest.raises(QueueError, match=rf"{path}.*Restore it .* --from first") as caught:
        load_offset(path, stream="s")
    assert "\n" not in str(caught.value)


def test_another_streams_position_is_never_reset_silently(tmp_path: Path) -> None:
    path = tmp_path / "offset.yaml"
    path.write_text("stream: other\noffset: 5\n")
    with pytest.raises(QueueError, match=r"stream 'other', not 's'; start with --from first"):
        load_offset(path, stream="s")
    assert path.read_text() == "stream: other\noffset: 5\n"


def test_the_timestamp_is_saved_with_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "offset.yaml"
    checkpoint = Checkpointer(path, stream="s", writes=WriteBatch())
    checkpoint.advance(4, timestamp=1_700_000_000_123)
    checkpoint.commit()
    assert load_position(path, stream="s") == Position(4, 1_700_000_000_123)


def test_save_then_load(tmp_path: Path) -> None:
    path = tmp_path / "offset.yaml"
    save_offset(path, stream="s", offset=123)
    assert load_offset(path, stream="s") == 123
    assert path.read_text().startswith("# azaion-queue position")
    assert [p.name for p in tmp_path.iterdir()] == ["offset.yaml"]  # no temporary file left


def test_commits_every_n_messages_after_flushing(tmp_path: Path) -> None:
    events: list[str] = []
    batch = RecordingBatch(events)
    path = tmp_path / "offset.yaml"
    checkpoint = Checkpointer(
        path, stream="s", writes=batch, every=3, interval_s=1e9, clock=Clock()
    )
    for offset in range(7):
        batch.write_bytes(tmp_path / f"file{offset}", b"x")
        checkpoint.advance(offset)
        events.append(f"offset.yaml {load_offset(path, stream='s')}")
    assert events == [
        "offset.yaml None",
        "offset.yaml None",
        "flush 4",  # three files and their folder
        "offset.yaml 2",
        "offset.yaml 2",
        "offset.yaml 2",
        "flush 4",
        "offset.yaml 5",
        "offset.yaml 5",
    ]
    assert (checkpoint.applied, checkpoint.committed) == (6, 5)
    checkpoint.commit()
    assert load_offset(path, stream="s") == 6


def test_commits_when_the_interval_passed(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "offset.yaml"
    checkpoint = Checkpointer(
        path, stream="s", writes=WriteBatch(), every=1000, interval_s=1.0, clock=clock
    )
    checkpoint.advance(0)
    checkpoint.commit_if_due()
    assert load_offset(path, stream="s") is None
    clock.now = 1.5
    checkpoint.commit_if_due()
    assert load_offset(path, stream="s") == 0
    commits = checkpoint.commits
    clock.now = 5.0
    checkpoint.commit_if_due()  # nothing new: no write
    assert checkpoint.commits == commits


def test_resumes_from_the_committed_offset(tmp_path: Path) -> None:
    path = tmp_path / "offset.yaml"
    save_offset(path, stream="s", offset=99)
    checkpoint = Checkpointer(path, stream="s", writes=WriteBatch())
    assert (checkpoint.applied, checkpoint.committed) == (99, 99)


def test_write_batch_flushes_moved_and_removed_files(tmp_path: Path) -> None:
    batch = WriteBatch()
    batch.write_bytes(tmp_path / "a" / "one", b"1")
    batch.move(tmp_path / "a" / "one", tmp_path / "b" / "one")
    batch.write_bytes(tmp_path / "a" / "two", b"2")
    assert batch.remove(tmp_path / "a" / "two")
    assert not batch.remove(tmp_path / "a" / "never")
    batch.flush()  # the first path is gone: its target is flushed instead
    assert len(batch) == 0
    assert (tmp_path / "b" / "one").read_bytes() == b"1"
