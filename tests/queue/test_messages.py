"""The wire messages: decoder and encoder against each other and against hand-built bodies."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import msgpack
import pytest

from azaion_training.errors import MessageError
from azaion_training.labels import Box
from azaion_training.queue.messages import (
    DETECTION_KEYS,
    AnnotationStatus,
    BulkAnnotations,
    DecodeLimits,
    Detection,
    Role,
    Source,
    decode_body,
    decode_message,
    encode_body,
    encode_message,
    inflate,
    parse_detections,
    to_amqp,
)
from tests.queue.helpers import bulk, created

DATE = dt.datetime(2025, 3, 1, 12, 30, 15, 123000, tzinfo=dt.timezone.utc)


def raw(fields: object, *, status: object = "Created", compress: bool = False) -> bytes:
    """An AMQP entry whose MessagePack body is ``fields``, as a foreign producer might send it."""
    body = msgpack.packb(fields, use_bin_type=True, datetime=True)
    if compress:
        body = gzip.compress(body)
    return bytes(to_amqp(body=body, status=status))


def platform_fields(**changes: object) -> list[object]:
    """A Created body by position, as the platform sends it."""
    fields: dict[int, object] = {
        0: DATE,
        1: "frame_000123",
        2: "flight.mp4",
        3: 12_340_000,
        4: ".jpg",
        5: '[{"centerX":0.5,"centerY":0.5,"width":0.2,"height":0.1,"classNum":21}]',
        6: b"\xff\xd8 image bytes",
        7: 20,
        8: "v@example.com",
        9: 1,
        10: 10,
    }
    for key, value in changes.items():
        fields[int(key.lstrip("k"))] = value
    return [fields[key] for key in range(11)]


@pytest.mark.parametrize("compress", [False, True])  # plain body; gzipped body
def test_annotation_round_trips(compress: bool) -> None:
    message = created("frame_1", role=Role.OPERATOR, seed=3)
    assert decode_message(encode_message(message, compress=compress)) == message


@pytest.mark.parametrize(
    "message",
    [
        bulk(AnnotationStatus.VALIDATED, "a", "b"),  # validated, with email
        BulkAnnotations(status=AnnotationStatus.DELETED, names=()),  # deleted, empty list
        BulkAnnotations(status=AnnotationStatus.DELETED, names=("x",), created_date=DATE),  # date
    ],
)
def test_bulk_round_trips(message: BulkAnnotations) -> None:
    assert decode_message(encode_message(message)) == message


def test_platform_body_decodes_field_by_field() -> None:
    message = decode_message(raw(platform_fields()))
    assert message.status is AnnotationStatus.CREATED
    assert message.name == "frame_000123"
    assert message.created_date == DATE
    assert message.original_media_name == "flight.mp4"
    assert message.time_ticks == 12_340_000
    assert message.image_extension == ".jpg"
    assert message.detections == (Detection(box=Box(21, 0.5, 0.5, 0.2, 0.1)),)
    assert message.image == b"\xff\xd8 image bytes"
    assert message.role is Role.VALIDATOR
    assert message.email == "v@example.com"
    assert message.source is Source.MANUAL


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Created", AnnotationStatus.CREATED),  # enum name
        ("edited", AnnotationStatus.EDITED),  # name in another case
        ("30", AnnotationStatus.VALIDATED),  # number as a string
        (40, AnnotationStatus.DELETED),  # number
        (20, AnnotationStatus.EDITED),  # number for a single annotation
    ],
)
def test_status_property_by_name_or_number(status: object, expected: AnnotationStatus) -> None:
    is_bulk = expected in (AnnotationStatus.VALIDATED, AnnotationStatus.DELETED)
    fields = [["a", "b"]] if is_bulk else platform_fields()
    assert decode_message(raw(fields, status=status)).status is expected


def test_status_falls_back_to_the_body_without_the_property() -> None:
    assert decode_message(raw(platform_fields(k10=20), status=None)).status is (
        AnnotationStatus.EDITED
    )
    assert decode_message(raw([["a"], "Deleted"], status=None)).status is AnnotationStatus.DELETED


def test_map_with_integer_keys_decodes_like_an_array() -> None:
    as_map = dict(enumerate(platform_fields()))
    assert decode_message(raw(as_map)) == decode_message(raw(platform_fields()))


def test_role_by_name_and_missing_optional_fields() -> None:
    fields = platform_fields(k7="ApiAdmin")
    for key in (0, 2, 3, 8, 9):
        fields[key] = None
    message = decode_message(raw(fields))
    assert message.role is Role.API_ADMIN
    assert (message.created_date, message.email, message.source) == (None, None, None)


def test_bulk_reads_further_keys_only_if_they_fit() -> None:
    message = decode_message(raw([["a"], 30, 123, "not a date"], status="Validated"))
    assert message == BulkAnnotations(status=AnnotationStatus.VALIDATED, names=("a",))


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


def test_confidence_is_written_and_read() -> None:
    message = created("a")
    assert all(d.confidence == 0.9 for d in decode_message(encode_message(message)).detections)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (b"", "empty stream entry"),  # nothing
        (b"random garbage", "not an AMQP 1.0 message"),  # not AMQP
        (bytes(to_amqp(body=b"\xc1", status="Created")), "not MessagePack"),  # reserved byte
        (bytes(to_amqp(body=b"\x93\x01", status="Created")), "not MessagePack"),  # truncated
        (raw("a string"), "expected an array"),  # wrong top-level type
        (raw({"name": "x"}), "expected an array"),  # string keys
        (raw(platform_fields(), status="Approved"), "is not one of"),  # unknown status name
        (raw(platform_fields(), status=99), "is not one of"),  # unknown status number
        (raw(platform_fields(k10=None), status=None), "no AnnotationStatus"),  # no status at all
        (raw(platform_fields(k1=None)), "name (key 1) is missing"),  # missing name
        (raw(platform_fields(k1=42)), "name (key 1) is 42, expected a string"),  # name type
        (raw(platform_fields(k4=None)), "imageExtension (key 4) is missing"),  # no extension
        (raw(platform_fields(k6=None)), "Created annotation has no image"),  # no image
        (raw(platform_fields(k6="text")), "image (key 6)"),  # image as a string
        (raw(platform_fields(k7=None)), "createdRole (key 7) is missing"),  # no role
        (raw(platform_fields(k7=55)), "createdRole 55 is not one of"),  # unknown role
        (raw(platform_fields(k7=True)), "expected an integer or a string"),  # bool role
        (raw(platform_fields(k0="yesterday")), "createdDate (key 0)"),  # date as a string
        (raw(platform_fields(k5="{not json")), "not valid JSON"),  # bad detections JSON
        (raw(platform_fields(k5='{"x": 1}')), "expected a JSON list"),  # object, not list
        (raw(platform_fields(k5="[1, 2]")), "detection 0 is int"),  # list of numbers
        (raw(platform_fields(k5='[{"x": 0.5}]')), "lacks cy, w, h, class_id"),  # missing keys
        (
            raw(platform_fields(k5='[{"x":"0.5","y":0,"w":0,"h":0,"cls":0}]')),
            "expected a number",
        ),  # number as a string
        (
            raw(platform_fields(k5='[{"x":0.5,"y":0,"w":0,"h":0,"cls":1.5}]')),
            "not a whole number",
        ),  # fractional class
        (
            raw(platform_fields(k5='[{"x":NaN,"y":0,"w":0,"h":0,"cls":1}]')),
            "finite",
        ),  # NaN
        (raw([None], status="Deleted"), "annotation names (key 0) is missing"),  # no names
        (raw(["a"], status="Validated"), "expected an array"),  # names as a string
        (raw([["a", 3]], status="Deleted"), "annotation name 1 is 3"),  # a name that is a number
        (bytes(to_amqp(body=b"\x1f\x8bbroken", status="Created")), "gzip"),  # broken gzip
        (
            bytes(to_amqp(body=gzip.compress(encode_body(created("a")))[:-12], status="Created")),
            "gzip body is truncated",
        ),  # truncated gzip
    ],
)
def test_bad_entries_are_refused_with_a_reason(entry: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode_message(entry)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("plain_bytes", "limits"),
    [
        (64 * 1024 * 1024 + 1024, DecodeLimits()),  # over the size bound
        (1024 * 1024, DecodeLimits()),  # 1 MiB of zeros: over the ratio bound (~1000 times)
        (1024 * 1024, DecodeLimits(max_inflate_ratio=2000, max_body_bytes=1024 * 1024 - 1)),
    ],
)
def test_compression_bombs_are_refused(plain_bytes: int, limits: DecodeLimits) -> None:
    bomb = gzip.compress(b"\x00" * plain_bytes)
    with pytest.raises(MessageError, match="inflates to more than"):
        inflate(bomb, limits)


def test_ordinary_gzip_bodies_inflate_within_the_ratio() -> None:
    body = encode_body(created("a"))
    assert inflate(gzip.compress(body), DecodeLimits(max_inflate_ratio=3)) == body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xdd" + (3_000_000).to_bytes(4, "big") + b"\xc0" * 3_000_000, "not MessagePack"),
        (b"\x91" * 1010 + b"\xc0", "more than 1000 arrays and maps"),
        (b"\x91" * 5000 + b"\xc0", "not MessagePack"),
        (b"\xdc\x07\xd0" + b"\x90" * 2000, "more than 1000 arrays and maps"),
        (b"\xdc\x07\xd0" + b"\x80" * 2000, "more than 1000 arrays and maps"),
        (b"\xdb" + (32 * 1024 * 1024).to_bytes(4, "big") + b"x" * 10, "not MessagePack"),
    ],
    ids=[
        "array of 3M nils",
        "nested 1010 deep",
        "nested 5000 deep",
        "2000 empty arrays",
        "2000 empty maps",
        "declared 32 MiB string",
    ],
)
def test_messagepack_length_bombs_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode_body(body, status="Deleted", limits=DecodeLimits(max_names=100_000))


def test_messagepack_amplification_in_gzip_is_refused_before_unpacking() -> None:
    nils = b"\xdd" + (3_000_000).to_bytes(4, "big") + b"\xc0" * 3_000_000
    entry = bytes(to_amqp(body=gzip.compress(nils), status="Deleted"))
    with pytest.raises(MessageError, match="inflates to more than"):
        decode_message(entry)


def test_reasons_never_carry_image_bytes() -> None:
    image = b"\xff\xd8SECRETPIXELS" * 10
    with pytest.raises(MessageError) as caught:
        decode_message(raw(platform_fields(k1=image)))
    assert "SECRETPIXELS" not in str(caught.value)
    assert "140 bytes" in str(caught.value)


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
