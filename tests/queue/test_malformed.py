"""Bad input (SPEC 5.4): over 1,000 generated malformed messages, all rejected with a reason,
nothing written outside the root, the consumer going on."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import pytest

from azaion_training.config import QueueSettings
from azaion_training.fs import DataTree
from azaion_training.queue import AnnotationConsumer, encode_message, rejected_messages
from tests.queue.helpers import consume_until, created, files_under, publish_entries, snapshot
from tests.queue.malformed import BAD_EXTENSIONS, IMAGE_MARKER, UNSAFE_NAMES, malformed_entries

ENTRIES = list(malformed_entries())


def deep_tree(tmp_path: Path) -> DataTree:
    """A tree two levels below ``tmp_path``, so that ``../../x`` would still land in it."""
    return DataTree(root=tmp_path / "one" / "two" / "root").create()


def escape_targets(tree: DataTree) -> set[Path]:
    """Every path outside the root that joining an unsafe name or extension naively would write
    (``images / "/etc/passwd.jpg"`` is ``/etc/passwd.jpg``; ``../../x`` climbs out)."""
    folders = [sub for d in tree.annotation_dirs() for sub in (d.images, d.labels)]
    folders.append(tree.queue_rejected)
    suffixes = {".jpg", ".txt", ".jpeg", ".png", *BAD_EXTENSIONS}
    names = [*UNSAFE_NAMES, "a"]
    targets = set()
    for folder in folders:
        for name in names:
            for suffix in suffixes:
                path = Path(os.path.normpath(folder / f"{name}{suffix}".replace("\x00", "")))
                if path != tree.root and tree.root not in path.parents:
                    targets.add(path)
    return targets


def test_there_are_over_a_thousand_in_many_categories() -> None:
    assert len(ENTRIES) >= 1000
    assert len(Counter(category for category, _ in ENTRIES)) >= 30


def test_every_malformed_message_is_rejected_with_a_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree = deep_tree(tmp_path)
    consumer = AnnotationConsumer(QueueSettings(stream="fuzz"), tree)
    targets = escape_targets(tree)
    assert {Path("/etc/passwd.jpg"), tmp_path / "one" / "tmp" / "escaped.jpg"} <= targets
    before = {path: path.stat().st_mtime_ns for path in targets if path.exists()}
    with caplog.at_level(logging.DEBUG):
        for offset, (_, entry) in enumerate(ENTRIES):
            consumer.handle(entry, offset)
        consumer.handle(encode_message(created("still_working")), len(ENTRIES))
        consumer.checkpoint.commit()

    rejected = list(rejected_messages(tree))
    assert consumer.stats.rejected == len(ENTRIES) == len(rejected)
    assert [r.offset for r in rejected] == list(range(len(ENTRIES)))
    assert all(r.raw() == entry for r, (_, entry) in zip(rejected, ENTRIES, strict=True))
    unexpected = [(ENTRIES[r.offset][0], r.reason) for r in rejected if "unexpected" in r.reason]
    assert unexpected == []  # every reason is a deliberate one, not a caught bug
    assert all(r.reason and len(r.reason) <= 500 for r in rejected)

    # Nothing outside the root (where a naive join would have written, and anywhere under
    # tmp_path), nothing in the annotation folders but the valid message.
    assert {path: path.stat().st_mtime_ns for path in targets if path.exists()} == before
    assert all(tree.root in path.parents for path in files_under(tmp_path))
    kept = {f"queue-rejected/{p.name}" for p in tree.queue_rejected.iterdir()}
    assert len(kept) == 2 * len(ENTRIES)
    assert snapshot(tree).keys() - kept == {
        "data/images/still_working.jpg",
        "data/labels/still_working.txt",
    }
    assert consumer.checkpoint.committed == len(ENTRIES)
    assert IMAGE_MARKER.decode() not in caplog.text


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_malformed_messages_through_the_stream(
    queue_settings: QueueSettings, tmp_path: Path
) -> None:
    sample = ENTRIES[:: len(ENTRIES) // 150][:150]
    valid = encode_message(created("after_the_bad_ones"))
    published = publish_entries([entry for _, entry in sample] + [valid], queue_settings)
    assert published == len(sample) + 1

    tree = deep_tree(tmp_path)
    targets = escape_targets(tree)
    before = {path: path.stat().st_mtime_ns for path in targets if path.exists()}
    consumer = consume_until(queue_settings, tree, last_offset=len(sample))
    assert consumer.stats.rejected == len(sample)
    assert [r.raw() for r in rejected_messages(tree)] == [entry for _, entry in sample]
    assert tree.data.label_path("after_the_bad_ones").is_file()
    assert {path: path.stat().st_mtime_ns for path in targets if path.exists()} == before
    assert all(tree.root in path.parents for path in files_under(tmp_path))
