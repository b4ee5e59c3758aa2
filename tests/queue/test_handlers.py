"""Routing and applying messages to the tree (SPEC 5.3), at the handler level (no broker)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.errors import MessageError
from azaion_training.fs import AnnotationDir, DataTree
from azaion_training.labels import Box, format_label, parse_label, read_label, write_label
from azaion_training.queue import AnnotationRouter, AnnotationStatus, Role
from azaion_training.queue.durability import WriteBatch
from azaion_training.queue.handlers import check_image, image_extension
from azaion_training.samples import sample_names
from tests.poison import BOMB_FORMATS, image_bomb
from tests.queue.helpers import bulk, created, edited, jpeg, snapshot

NEW_BOXES = [Box(5, 0.5, 0.5, 0.25, 0.25)]


@pytest.fixture
def router(tree: DataTree) -> AnnotationRouter:
    return AnnotationRouter(tree, WriteBatch())


def where(tree: DataTree, name: str) -> list[str]:
    """The folders holding an image or label of annotation ``name``."""
    found = []
    for folder in (tree.data, tree.data_seed, tree.data_deleted):
        if list(folder.images.glob(f"{name}.*")) or folder.label_path(name).exists():
            found.append(folder.path.name)
    return found


def is_complete(folder: AnnotationDir, name: str) -> bool:
    return folder.image_path(name, ".jpg").is_file() and folder.label_path(name).is_file()


def make_samples(tree: DataTree, name: str) -> None:
    for sample in sample_names(name):
        (tree.data_processed.images / f"{sample}.jpg").write_bytes(b"jpg")
        write_label(tree.data_processed.labels / f"{sample}.txt", [])


def samples_left(tree: DataTree, name: str) -> int:
    names = set(sample_names(name))
    return sum(1 for p in tree.data_processed.path.rglob("*") if p.is_file() and p.stem in names)


@pytest.mark.parametrize(
    ("role", "folder"),
    [
        (Role.VALIDATOR, "data"),  # validator role
        (Role.ADMIN, "data"),  # validator role
        (Role.API_ADMIN, "data"),  # validator role
        (Role.OPERATOR, "data-seed"),  # not a validator
        (Role.COMPANION_PC, "data-seed"),  # not a validator
    ],
)
def test_created_goes_to_data_or_seed_by_role(
    router: AnnotationRouter, tree: DataTree, role: Role, folder: str
) -> None:
    message = created("a", role=role)
    router.apply(message)
    assert where(tree, "a") == [folder]
    target = AnnotationDir(tree.root / folder)
    assert target.image_path("a", ".jpg").read_bytes() == message.image
    assert read_label(target.label_path("a")) == parse_label(format_label(message.boxes))


def test_edited_by_validator_moves_the_image_from_seed(
    router: AnnotationRouter, tree: DataTree
) -> None:
    router.apply(created("a", role=Role.OPERATOR))
    router.apply(edited("a", role=Role.VALIDATOR, boxes=NEW_BOXES))
    assert where(tree, "a") == ["data"]
    assert read_label(tree.data.label_path("a")) == NEW_BOXES


def test_edited_by_validator_in_data_relabels_and_drops_samples(
    router: AnnotationRouter, tree: DataTree
) -> None:
    router.apply(created("a"))
    make_samples(tree, "a")
    make_samples(tree, "b")
    router.apply(edited("a", role=Role.ADMIN, boxes=NEW_BOXES))
    assert where(tree, "a") == ["data"]
    assert read_label(tree.data.label_path("a")) == NEW_BOXES
    assert samples_left(tree, "a") == 0
    assert samples_left(tree, "b") == 16  # another annotation's samples stay


def test_edited_by_operator_sends_it_back_to_seed(router: AnnotationRouter, tree: DataTree) -> None:
    router.apply(created("a"))
    make_samples(tree, "a")
    router.apply(edited("a", role=Role.OPERATOR, boxes=NEW_BOXES))
    assert where(tree, "a") == ["data-seed"]
    assert is_complete(tree.data_seed, "a")
    assert read_label(tree.data_seed.label_path("a")) == NEW_BOXES
    assert samples_left(tree, "a") == 0


def test_edited_with_an_image_replaces_it(router: AnnotationRouter, tree: DataTree) -> None:
    router.apply(created("a", role=Role.OPERATOR))
    image, _ = jpeg(seed=99)
    router.apply(edited("a", role=Role.VALIDATOR, boxes=NEW_BOXES, image=image))
    assert where(tree, "a") == ["data"]
    assert tree.data.image_path("a", ".jpg").read_bytes() == image


def test_edited_without_any_image_is_skipped(router: AnnotationRouter, tree: DataTree) -> None:
    applied = router.apply(edited("ghost", role=Role.VALIDATOR, boxes=NEW_BOXES))
    assert applied.missing == ("ghost",)
    assert snapshot(tree) == {}


def test_validated_moves_seed_to_data(router: AnnotationRouter, tree: DataTree) -> None:
    for name in ("a", "b"):
        router.apply(created(name, role=Role.OPERATOR))
    router.apply(created("c", role=Role.VALIDATOR))
    applied = router.apply(bulk(AnnotationStatus.VALIDATED, "a", "c", "nowhere"))
    assert (where(tree, "a"), where(tree, "b"), where(tree, "c")) == (
        ["data"],
        ["data-seed"],
        ["data"],
    )
    assert is_complete(tree.data, "a")
    assert applied.missing == ("nowhere",)


@pytest.mark.parametrize("role", [Role.VALIDATOR, Role.OPERATOR])  # deleted from data; from seed
def test_deleted_moves_to_data_deleted(
    router: AnnotationRouter, tree: DataTree, role: Role
) -> None:
    router.apply(created("a", role=role))
    router.apply(created("b", role=role))
    if role.validates:
        make_samples(tree, "a")  # only annotations in data/ have samples
    router.apply(bulk(AnnotationStatus.DELETED, "a"))
    assert (where(tree, "a"), where(tree, "b")) == (
        ["data_deleted"],
        [("data" if role.validates else "data-seed")],
    )
    assert is_complete(tree.data_deleted, "a")
    assert samples_left(tree, "a") == 0


def test_created_again_with_another_extension_leaves_one_image(
    router: AnnotationRouter, tree: DataTree
) -> None:
    router.apply(created("a"))
    _, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    router.apply(replace(created("a"), image_extension=".PNG", image=png.tobytes()))
    assert sorted(p.name for p in tree.data.images.iterdir()) == ["a.png"]


@pytest.mark.parametrize(
    "messages",
    [
        [created("a", role=Role.OPERATOR)],  # created into seed
        [created("a"), edited("a", role=Role.OPERATOR, boxes=NEW_BOXES)],  # edit back to seed
        [created("a", role=Role.OPERATOR), bulk(AnnotationStatus.VALIDATED, "a")],  # validate
        [created("a"), bulk(AnnotationStatus.DELETED, "a")],  # delete
    ],
)
def test_every_message_applied_twice_leaves_the_same_tree(
    router: AnnotationRouter, tree: DataTree, messages: list
) -> None:
    for message in messages:
        router.apply(message)
        first = snapshot(tree)
        again = router.apply(message)
        assert snapshot(tree) == first
        assert again.changes == 0


def test_boxes_reaching_past_the_edge_are_clipped(router: AnnotationRouter, tree: DataTree) -> None:
    message = edited(
        "a", role=Role.VALIDATOR, boxes=[Box(1, 0.95, 0.5, 0.2, 0.2)], image=jpeg(1)[0]
    )
    router.apply(message)
    (box,) = read_label(tree.data.label_path("a"))
    assert box.xyxy == pytest.approx((0.85, 0.4, 1.0, 0.6))


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (created("../../x"), "contains a path separator"),  # traversal
        (created("/etc/passwd"), "contains a path separator"),  # absolute path
        (created("a/b"), "contains a path separator"),  # separator
        (created("a\\b"), "contains a path separator"),  # windows separator
        (created(".hidden"), "starts with a dot"),  # hidden file
        (created("x..y"), "contains '..'"),  # dots
        (created("tab\tname"), "control or invisible characters"),  # control character
        (created("n" * 10_000), "bytes long"),  # 10 KB name
        (created("я" * 130), "260 bytes long"),  # 130 Cyrillic letters: over 255 bytes
        (created(""), "empty"),  # empty name
        (bulk(AnnotationStatus.DELETED, "ok", "../../etc"), "path separator"),  # one bad bulk name
        (edited("a", role=Role.VALIDATOR, boxes=[Box(80, 0.5, 0.5, 0.1, 0.1)]), "outside 0..79"),
        (edited("a", role=Role.VALIDATOR, boxes=[Box(1, 1.5, 0.5, 0.1, 0.1)]), "outside [0, 1]"),
        (edited("a", role=Role.VALIDATOR, boxes=[Box(1, 0.5, -0.1, 0.1, 0.1)]), "outside [0, 1]"),
        (
            edited("a", role=Role.VALIDATOR, boxes=[], image=b"\xff\xd8\xff garbage"),
            "does not decode",
        ),
    ],
)
def test_unsafe_or_invalid_messages_write_nothing(
    router: AnnotationRouter, tree: DataTree, message: object, reason: str
) -> None:
    with pytest.raises(MessageError) as caught:
        router.apply(message)  # type: ignore[arg-type]
    assert reason in str(caught.value)
    assert snapshot(tree) == {}


@pytest.mark.parametrize(
    ("extension", "expected"),
    [(".jpg", ".jpg"), (".JPEG", ".jpeg"), ("png", ".png"), (" .Bmp ", ".bmp"), (".webp", ".webp")],
)
def test_allowed_extensions(extension: str, expected: str) -> None:
    assert image_extension(extension) == expected


@pytest.mark.parametrize("extension", [".gif", ".exe", ".jpg/../x", "", ".", ".tiff", ".jpg.sh"])
def test_refused_extensions(extension: str) -> None:
    with pytest.raises(MessageError, match="is not one of"):
        image_extension(extension)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 100, b"\xff\xd8\xff\xe0" + b"\x00" * 50, b"\x89PNG\r\n\x1a\n" + b"x" * 30],
)  # empty; zeros; JPEG header only; PNG header only
def test_undecodable_images(data: bytes) -> None:
    with pytest.raises(MessageError, match="does not decode"):
        check_image(data)


def test_files_are_in_place_only_after_flush_is_not_needed_to_read(
    router: AnnotationRouter, tree: DataTree
) -> None:
    # Writes are visible at once (atomic renames); the batch only remembers what to fsync.
    router.apply(created("a"))
    assert is_complete(tree.data, "a")
    assert len(router.writes) > 0
    router.writes.flush()
    assert len(router.writes) == 0
    assert not [p for p in tree.root.rglob(".*") if p.is_file()]  # no temporary files left


def test_label_goes_in_before_the_image(tree: DataTree, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[Path] = []
    writes = WriteBatch()
    original = writes.write_bytes
    monkeypatch.setattr(
        writes, "write_bytes", lambda path, data: (order.append(path), original(path, data))
    )
    AnnotationRouter(tree, writes).apply(created("a"))
    assert [p.parent.name for p in order] == ["labels", "images"]


@pytest.mark.parametrize("status", [AnnotationStatus.CREATED, AnnotationStatus.EDITED])
def test_a_bulk_message_with_a_status_without_a_route_is_rejected_not_deleted(
    router: AnnotationRouter, tree: DataTree, status: AnnotationStatus
) -> None:
    router.apply(created("keep"))
    before = snapshot(tree)
    with pytest.raises(
        MessageError, match=f"no route for BulkAnnotations with status {status.wire_name}"
    ):
        router.apply(replace(bulk(AnnotationStatus.DELETED, "keep"), status=status))
    assert snapshot(tree) == before
    assert where(tree, "keep") == ["data"]


def test_a_single_message_with_a_bulk_status_is_rejected(router: AnnotationRouter) -> None:
    with pytest.raises(MessageError, match="no route for Annotation with status Deleted"):
        router.apply(replace(created("a"), status=AnnotationStatus.DELETED))


@pytest.mark.parametrize("fmt", BOMB_FORMATS)
def test_image_bombs_are_refused_from_the_header(
    router: AnnotationRouter, tree: DataTree, fmt: str
) -> None:
    extension = ".jpg" if fmt == "jpeg" else f".{fmt}"
    message = replace(created("bomb"), image=image_bomb(fmt), image_extension=extension)
    with pytest.raises(MessageError, match=r"12000x12000 pixels \(144.0 megapixels\)"):
        router.apply(message)
    assert where(tree, "bomb") == []


def test_the_pixel_budget_is_a_setting(tree: DataTree) -> None:
    small = AnnotationRouter(tree, WriteBatch(), max_image_megapixels=0.001)  # 1000 pixels
    with pytest.raises(MessageError, match="64x64 pixels"):
        small.apply(created("a"))
    assert AnnotationRouter(tree, WriteBatch(), max_image_megapixels=0.005).apply(created("a"))


def test_every_status_has_a_route(router: AnnotationRouter) -> None:
    """A new message kind is an `AnnotationStatus` member, a `wire.KINDS` row and a route here:
    every kind of the wire table has its route, for the value type the wire decodes it into."""
    from azaion_training.queue.wire import KINDS

    routes = set(router._routes)
    assert routes == {(kind.type, status) for status, kind in KINDS.items()}
    assert {status for _, status in routes} == set(AnnotationStatus)
