from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from azaion_training.config import QueueSettings
from azaion_training.errors import MessageError
from azaion_training.fs import DataTree
from azaion_training.queue import AnnotationConsumer, AnnotationStatus, Role, encode_message
from azaion_training.queue.catalogue import Catalogue, image_digest
from azaion_training.queue.messages import BulkAnnotations, Source
from tests.queue.helpers import bulk, created, edited

DAY = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def consumer(tree: DataTree) -> AnnotationConsumer:
    return AnnotationConsumer(QueueSettings(stream="catalogue-test"), tree)


def dated(message, day: int):
    return dataclasses.replace(message, created_date=DAY + dt.timedelta(days=day))


def deleted(name: str, day: int) -> BulkAnnotations:
    return BulkAnnotations(
        status=AnnotationStatus.DELETED, names=(name,), created_date=DAY + dt.timedelta(days=day)
    )


def test_a_created_message_is_recorded_whole_and_a_replay_adds_nothing(tree: DataTree) -> None:
    message = dataclasses.replace(
        created("a", role=Role.OPERATOR),
        original_media_name="flight-7.mp4",
        time_ticks=12_345_000,
        email="op@example.com",
        source=Source.AI,
    )
    run = consumer(tree)
    run.handle(encode_message(message), 0)
    run.checkpoint.commit()
    with Catalogue.for_tree(tree) as catalogue:
        entry = catalogue.get("a")
        catalogue.record(message, offset=0, missing=())  # a replay of the same offset
        catalogue.commit()
        assert len(catalogue.history("a")) == 1
    assert entry is not None
    assert (entry.media, entry.time_ticks, entry.role, entry.email, entry.source) == (
        "flight-7.mp4",
        12_345_000,
        int(Role.OPERATOR),
        "op@example.com",
        int(Source.AI),
    )
    assert entry.digest == image_digest(message.image)
    assert entry.folder == tree.data_seed_name and entry.origin == "queue"


def test_status_history_follows_the_tree(tree: DataTree) -> None:
    run = consumer(tree)
    a = created("a", role=Role.OPERATOR)
    messages = [
        a,
        bulk(AnnotationStatus.VALIDATED, "a"),
        edited("a", role=Role.OPERATOR, boxes=a.boxes),
    ]
    messages.append(bulk(AnnotationStatus.DELETED, "a"))
    folders = []
    for offset, message in enumerate(messages):
        run.handle(encode_message(message), offset)
        run.checkpoint.commit()
        with Catalogue.for_tree(tree) as catalogue:
            folders.append(catalogue.get("a").folder)
    assert folders == [
        tree.data_seed_name,
        tree.data_name,
        tree.data_seed_name,
        tree.data_deleted_name,
    ]
    with Catalogue.for_tree(tree) as catalogue:
        statuses = [status for _, status, _, _ in catalogue.history("a")]
    assert statuses == [10, 30, 20, 40]


@pytest.mark.parametrize(
    ("created_day", "applied"),
    [
        (-1, False),  # made before the deletion: a late message, refused
        (1, True),  # made after it: the annotation is made again
    ],
)
def test_created_older_than_the_recorded_deletion_is_rejected(
    tree: DataTree, created_day: int, applied: bool
) -> None:
    run = consumer(tree)
    run.handle(encode_message(dated(created("a"), -2)), 0)
    run.handle(encode_message(deleted("a", 0)), 1)
    run.handle(encode_message(dated(created("a", seed=3), created_day)), 2)
    run.checkpoint.commit()
    assert tree.data.label_path("a").exists() is applied
    assert tree.data_deleted.label_path("a").exists() is not applied
    assert run.stats.rejected == (0 if applied else 1)
    if not applied:
        reasons = [p.read_text() for p in tree.queue_rejected.glob("*.reason.txt")]
        assert len(reasons) == 1 and "older than its deletion" in reasons[0]


def test_a_deletion_seen_first_still_refuses_an_older_created(tree: DataTree) -> None:
    with Catalogue.for_tree(tree) as catalogue:
        catalogue.record(deleted("late", 0), offset=5, missing=("late",))
        catalogue.commit()
        with pytest.raises(MessageError, match="older than its deletion"):
            catalogue.check_order(dated(created("late"), -1))
        catalogue.check_order(dated(created("late"), 1))
        catalogue.check_order(created("never-deleted"))


def test_annotations_found_in_the_tree_are_registered_once(tree: DataTree) -> None:
    image = tree.data.images / "found.jpg"
    image.write_bytes(b"bytes of an image")
    with Catalogue.for_tree(tree) as catalogue:
        entry = catalogue.register("found", folder=tree.data_name, image=image)
        catalogue.commit()
        image.write_bytes(b"changed")  # a second sight does not read it again
        again = catalogue.register("found", folder=tree.data_name, image=image)
    assert entry.digest == again.digest == image_digest(b"bytes of an image")
    assert again.origin == "found" and again.media is None


def test_only_a_validation_moves_an_entry_to_data(tree: DataTree) -> None:
    """A bulk kind other than Validated and Deleted (none exists yet: Edited stands in for a
    kind added later) records its status and history but is no validation."""
    with Catalogue.for_tree(tree) as catalogue:
        message = created("a", role=Role.OPERATOR)
        catalogue.record(message, offset=0, missing=())
        other = BulkAnnotations(status=AnnotationStatus.EDITED, names=("a",))
        catalogue.record(other, offset=1, missing=())
        entry = catalogue.get("a")
        assert entry is not None and entry.folder == tree.data_seed_name
        assert entry.status == int(AnnotationStatus.EDITED)
        catalogue.record(bulk(AnnotationStatus.VALIDATED, "a"), offset=2, missing=())
        entry = catalogue.get("a")
        assert entry is not None and entry.folder == tree.data_name
        assert [row[0] for row in catalogue.history("a")] == [0, 1, 2]
