"""The wire form: decoder and encoder against each other, the field table and hand-built bodies."""

from __future__ import annotations

import datetime as dt
import gzip
from dataclasses import replace

import msgpack
import pytest

from azaion_training.errors import MessageError
from azaion_training.labels import Box
from azaion_training.queue import wire
from azaion_training.queue.messages import (
    AnnotationStatus,
    BulkAnnotations,
    Detection,
    Role,
    Source,
)
from azaion_training.queue.wire import (
    DecodeLimits,
    decode_body,
    decode_message,
    encode_body,
    encode_message,
    inflate,
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


def test_the_docstring_table_is_the_field_table() -> None:
    assert wire.field_table() in (wire.__doc__ or "")


def test_field_tables_are_positions_0_to_n_and_every_status_has_a_kind() -> None:
    for table in (wire.ANNOTATION_FIELDS, wire.BULK_FIELDS):
        assert [field.key for field in table] == list(range(len(table)))
    assert set(wire.KINDS) == set(AnnotationStatus)
    assert set(AnnotationStatus) == wire.SINGLE_STATUSES | wire.BULK_STATUSES
    assert {AnnotationStatus.CREATED} == wire.IMAGE_STATUSES


@pytest.mark.parametrize("status", list(AnnotationStatus), ids=lambda s: s.wire_name)
def test_every_field_of_every_kind_round_trips(status: AnnotationStatus) -> None:
    """Each field set to a non-default value alone survives encode and decode, at its own
    position in the body."""
    kind = wire.KINDS[status]
    full = bulk(status, "a", "b") if kind.type is BulkAnnotations else created("a", status=status)
    samples = {
        "created_date": DATE,
        "original_media_name": "flight.mp4",
        "time_ticks": 12_340_000,
        "email": "v@example.com",
        "source": Source.AI,
        "role": Role.ADMIN,
        "image": b"\xff\xd8 bytes",
    }
    for field in kind.fields:
        if field.attribute == "status" or field.attribute not in samples:
            continue
        message = replace(full, **{field.attribute: samples[field.attribute]})
        assert decode_message(encode_message(message)) == message, field.attribute
        body = msgpack.unpackb(encode_body(message), timestamp=3)
        assert field.decode(body[field.key]) == samples[field.attribute], field.attribute
    assert decode_message(encode_message(full)) == full
