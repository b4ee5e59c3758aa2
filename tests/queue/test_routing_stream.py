"""Every routing rule of SPEC 5.3 through a real RabbitMQ stream: both kinds of role, plain and
gzipped bodies, and every message delivered twice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from azaion_training.fs import AnnotationDir, DataTree, atomic_write_bytes
from azaion_training.labels import Box, format_label, parse_label, read_label, write_label
from azaion_training.queue import AnnotationStatus, Message, Role, encode_message
from azaion_training.samples import sample_names
from tests.queue.helpers import (
    bulk,
    consume_until,
    created,
    edited,
    jpeg,
    node_settings,
    publish_entries,
)
from tests.services.rabbitmq import RabbitMQNode

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

NEW_BOXES = [Box(7, 0.5, 0.5, 0.3, 0.2)]
MODES = ("plain", "gzip")


@dataclass(frozen=True)
class Rule:
    """One routing case: the tree before, the messages, where the annotation must end up."""

    case: str
    messages: list[Message]
    folder: str
    before: str | None = None  # "data" or "data-seed": the annotation is there beforehand
    boxes: list[Box] | None = None  # the label expected (default: the Created message's)
    image: bytes | None = None  # the image expected (default: the Created message's)


def rules(mode: str) -> list[Rule]:
    def n(case: str) -> str:
        return f"{mode}-{case}"

    new_image = jpeg(seed=77)[0]
    table = [
        Rule(
            n(f"created-{role.wire_name}"),
            [created(n(f"created-{role.wire_name}"), role=role)],
            folder,
        )
        for role, folder in [
            (Role.VALIDATOR, "data"),
            (Role.ADMIN, "data"),
            (Role.API_ADMIN, "data"),
            (Role.OPERATOR, "data-seed"),
            (Role.COMPANION_PC, "data-seed"),
        ]
    ]
    table += [
        Rule(
            n("edited-by-validator-from-seed"),
            [
                created(n("edited-by-validator-from-seed"), role=Role.OPERATOR),
                edited(n("edited-by-validator-from-seed"), role=Role.VALIDATOR, boxes=NEW_BOXES),
            ],
            "data",
            boxes=NEW_BOXES,
        ),
        Rule(
            n("edited-by-admin-in-data"),
            [edited(n("edited-by-admin-in-data"), role=Role.ADMIN, boxes=NEW_BOXES)],
            "data",
            before="data",
            boxes=NEW_BOXES,
        ),
        Rule(
            n("edited-by-operator-from-data"),
            [edited(n("edited-by-operator-from-data"), role=Role.OPERATOR, boxes=NEW_BOXES)],
            "data-seed",
            before="data",
            boxes=NEW_BOXES,
        ),
        Rule(
            n("edited-by-companion-with-image"),
            [
                created(n("edited-by-companion-with-image"), role=Role.OPERATOR),
                edited(
                    n("edited-by-companion-with-image"),
                    role=Role.COMPANION_PC,
                    boxes=NEW_BOXES,
                    image=new_image,
                ),
            ],
            "data-seed",
            boxes=NEW_BOXES,
            image=new_image,
        ),
        Rule(
            n("validated"),
            [bulk(AnnotationStatus.VALIDATED, n("validated"), n("validated-unknown"))],
            "data",
            before="data-seed",
        ),
        Rule(
            n("deleted-from-data"),
            [bulk(AnnotationStatus.DELETED, n("deleted-from-data"))],
            "data_deleted",
            before="data",
        ),
        Rule(
            n("deleted-from-seed"),
            [
                created(n("deleted-from-seed"), role=Role.OPERATOR),
                bulk(AnnotationStatus.DELETED, n("deleted-from-seed")),
            ],
            "data_deleted",
        ),
    ]
    return table


ALL_RULES = {rule.case: rule for mode in MODES for rule in rules(mode)}
BEFORE_IMAGE, BEFORE_BOXES = jpeg(seed=5)


def place_before(tree: DataTree, rule: Rule) -> None:
    """Puts the annotation where the rule says it was, with augmented samples if in data/."""
    folder = AnnotationDir(tree.root / rule.before)  # type: ignore[operator]
    atomic_write_bytes(folder.image_path(rule.case, ".jpg"), BEFORE_IMAGE)
    write_label(folder.label_path(rule.case), BEFORE_BOXES)
    if rule.before == "data":
        for sample in sample_names(rule.case):
            atomic_write_bytes(tree.data_processed.images / f"{sample}.jpg", BEFORE_IMAGE)
            write_label(tree.data_processed.labels / f"{sample}.txt", BEFORE_BOXES)


@pytest.fixture(scope="module")
def routed(rabbitmq: RabbitMQNode, tmp_path_factory: pytest.TempPathFactory) -> DataTree:
    """A tree after consuming every rule's messages, each published twice in a row."""
    tree = DataTree(root=tmp_path_factory.mktemp("routing") / "root").create()
    entries = []
    for rule in ALL_RULES.values():
        if rule.before:
            place_before(tree, rule)
        for message in rule.messages:
            entry = encode_message(message, compress=rule.case.startswith("gzip"))
            entries += [entry, entry]
    settings = node_settings(rabbitmq, stream="routing-rules")
    assert publish_entries(entries, settings) == len(entries)
    consumer = consume_until(settings, tree, last_offset=len(entries) - 1)
    assert consumer.stats.rejected == 0
    assert consumer.stats.applied == len(entries)
    return tree


def where(tree: DataTree, name: str) -> list[str]:
    folders = (tree.data, tree.data_seed, tree.data_deleted)
    return [
        f.path.name
        for f in folders
        if f.label_path(name).exists() or any(f.images.glob(f"{name}.*"))
    ]


@pytest.mark.parametrize("case", list(ALL_RULES))
def test_routing_rule(routed: DataTree, case: str) -> None:
    rule = ALL_RULES[case]
    assert where(routed, case) == [rule.folder]
    folder = AnnotationDir(routed.root / rule.folder)
    first = rule.messages[0]
    expected_boxes = rule.boxes
    if expected_boxes is None:
        expected_boxes = first.boxes if hasattr(first, "boxes") else BEFORE_BOXES
    assert read_label(folder.label_path(case)) == parse_label(format_label(expected_boxes))
    expected_image = rule.image or getattr(first, "image", None) or BEFORE_IMAGE
    assert folder.image_path(case, ".jpg").read_bytes() == expected_image
    left = [p for p in routed.data_processed.path.rglob("*") if p.stem in sample_names(case)]
    assert left == []  # stale samples dropped whenever data/ changed or was left


def test_unknown_names_in_a_bulk_message_change_nothing(routed: DataTree) -> None:
    assert where(routed, "plain-validated-unknown") == []


def test_nothing_was_left_half_written(routed: DataTree) -> None:
    dot_files = [p for p in Path(routed.root).rglob(".*") if p.is_file()]
    assert dot_files == [routed.lock_file("queue")]  # the consumer's lock, kept by design
