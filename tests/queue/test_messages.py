"""The values of the stream's messages: detection spellings and the platform's enum names."""

from __future__ import annotations

import json

import pytest

from azaion_training.labels import Box
from azaion_training.queue.messages import DETECTION_KEYS, AnnotationStatus, Role, parse_detections


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ({"x": 0.5, "y": 0.4, "w": 0.2, "h": 0.1, "cls": 3}, Box(3, 0.5, 0.4, 0.2, 0.1)),  # short
        (
            {"CenterX": 0.5, "CenterY": 0.4, "Width": 0.2, "Height": 0.1, "ClassNumber": 3},
            Box(3, 0.5, 0.4, 0.2, 0.1),
        ),  # C# property names
        (
            {"center_x": 0.5, "center_y": 0.4, "WIDTH": 0.2, "height": 0.1, "class": 3.0},
            Box(3, 0.5, 0.4, 0.2, 0.1),
        ),  # snake case, upper case, class as a whole float
        (
            {"x": 1, "y": 0, "w": 1, "h": 1, "classNum": 0, "probability": 0.7, "extra": "x"},
            Box(0, 1.0, 0.0, 1.0, 1.0),
        ),  # integers, unknown keys ignored
    ],
)
def test_detection_key_spellings(box: dict[str, object], expected: Box) -> None:
    (detection,) = parse_detections(json.dumps([box]))
    assert detection.box == expected


def test_every_documented_spelling_is_read() -> None:
    for field, spellings in DETECTION_KEYS.items():
        for spelling in spellings:
            box = {"x": 0.5, "y": 0.5, "w": 0.1, "h": 0.1, "cls": 1, "confidence": 0.5}
            box = {k: v for k, v in box.items() if k not in DETECTION_KEYS[field]}
            box[spelling] = 0.25 if field != "class_id" else 2
            (detection,) = parse_detections(json.dumps([box]))
            value = detection.confidence if field == "confidence" else getattr(detection.box, field)
            assert value == (0.25 if field != "class_id" else 2), spelling


@pytest.mark.parametrize("text", [None, "", "  ", "[]", []])  # no boxes in each form
def test_empty_detections(text: object) -> None:
    assert parse_detections(text) == ()


def test_enums_carry_the_platform_names() -> None:
    assert [s.wire_name for s in AnnotationStatus] == ["Created", "Edited", "Validated", "Deleted"]
    assert [r.wire_name for r in Role] == [
        "Operator",
        "Validator",
        "CompanionPC",
        "Admin",
        "ApiAdmin",
    ]
    assert {r for r in Role if r.validates} == {Role.VALIDATOR, Role.ADMIN, Role.API_ADMIN}
