"""Messages in the platform's format from a folder (the producer side of the stream)."""

from __future__ import annotations

from pathlib import Path

from azaion_training.demo.world import write_annotations
from azaion_training.fs import AnnotationDir
from azaion_training.labels import read_label
from azaion_training.queue import decode_message, review_messages


def test_review_messages_validate_the_operators_annotations_in_bulk(tmp_path: Path) -> None:
    incoming = AnnotationDir(tmp_path / "incoming")
    names = write_annotations(incoming, 8, seed=3, width=64, height=64)
    messages = [decode_message(raw) for raw in review_messages(incoming.path, operator_share=4)]
    roles = [m.role.name for m in messages[:-1]]
    assert roles == ["VALIDATOR"] * 3 + ["OPERATOR"] + ["VALIDATOR"] * 3 + ["OPERATOR"]
    assert messages[-1].status.name == "VALIDATED"
    assert messages[-1].names == (names[3], names[7])
    assert list(messages[0].detections) and all(
        d.box == b
        for d, b in zip(
            messages[0].detections, read_label(incoming.label_path(names[0])), strict=True
        )
    )


def test_without_operators_there_is_no_bulk_message(tmp_path: Path) -> None:
    incoming = AnnotationDir(tmp_path / "incoming")
    write_annotations(incoming, 3, width=64, height=64)
    messages = [decode_message(raw) for raw in review_messages(incoming.path, operator_share=0)]
    assert [m.role.name for m in messages] == ["VALIDATOR"] * 3
