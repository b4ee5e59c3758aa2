"""The wire form of the annotation stream's messages (SPEC 5.2): one field table, its codec.

Each stream entry is an AMQP 1.0 message. Its AMQP application property ``AnnotationStatus``
names the kind (enum name such as ``"Created"``, or its number) and its body is MessagePack,
optionally gzipped. Created and Edited carry one annotation (`Annotation`) as an array (or a map
with integer keys) by position; Validated and Deleted carry a list of names (`BulkAnnotations`).
`KINDS` says which status carries which value and fields; `ANNOTATION_FIELDS` and `BULK_FIELDS`
are the only place the positions are written, and drive decoding, encoding and this table
(`field_table`; a test keeps the two equal):

    key  Annotation field      wire type                 BulkAnnotations field
    0    created_date          timestamp                 names (array of str)
    1    name                  str                       status (int or str; optional)
    2    original_media_name   str                       email (str; optional)
    3    time_ticks            int (.NET ticks, 100 ns)  created_date (timestamp; optional)
    4    image_extension       str (".jpg")
    5    detections            str (JSON, see `DETECTION_KEYS`)
    6    image                 bin (Created; optional for Edited)
    7    role                  int (`Role`)
    8    email                 str
    9    source                int (`Source`)
    10   status                int (`AnnotationStatus`)

`decode_message` turns the raw AMQP bytes of a stream entry into a `Message` or raises
`MessageError` with a one-line reason; `encode_message` is its inverse and is what the producer
tool and the tests publish. Decoding checks structure and types only; whether names are safe and
images decode is checked where they are applied (`azaion_training.queue.handlers`).

Example:
    >>> bulk = BulkAnnotations(status=AnnotationStatus.DELETED, names=("a", "b"))
    >>> decode_message(encode_message(bulk)) == bulk
    True
"""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
from rstream import AMQPMessage, amqp_decoder

from azaion_training.config import QueueSettings
from azaion_training.errors import MessageError
from azaion_training.queue.messages import (
    Annotation,
    AnnotationStatus,
    BulkAnnotations,
    Message,
    Role,
    Source,
    format_detections,
    parse_detections,
    preview,
)

STATUS_PROPERTY = "AnnotationStatus"
"""The AMQP application property that carries the routing status."""

MAX_CONTAINERS = 1000
"""Most MessagePack arrays and maps in one body (a message has two at most)."""
MAX_STR_BYTES = 16 * 1024 * 1024
"""Longest MessagePack string (the detections JSON is the longest one sent)."""

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class WireField:
    """One position of a message body.

    Attributes:
        key: the position (an array index, or an integer map key).
        attribute: the value type's attribute (``status`` is the kind, not decoded into it).
        label: the platform's name of the field, in error messages.
        wire: its wire type, for the table in the module docstring.
        kind: the types a decoded value must have (``None``: any, ``read`` checks it).
        required: absent (or nil) is an error; else absent reads as ``default``.
        lenient: a value of another type reads as ``default`` instead of being an error.
        read: wire value -> the attribute's value; ``write``: the inverse (both identity when
            ``None``).
    """

    key: int
    attribute: str
    label: str
    wire: str
    kind: Any = None
    required: bool = False
    lenient: bool = False
    read: Callable[[Any], Any] | None = None
    write: Callable[[Any], Any] | None = None
    default: Any = None

    def decode(self, value: Any) -> Any:
        """The attribute's value from the body's ``value`` (``None`` when absent)."""
        if value is None:
            if self.required:
                raise MessageError(f"{self.label} (key {self.key}) is missing")
            return self.default
        if self.kind is not None and (isinstance(value, bool) or not isinstance(value, self.kind)):
            if self.lenient:
                return self.default
            raise MessageError(
                f"{self.label} (key {self.key}) is {preview(value)}, "
                f"expected {_kind_name(self.kind)}"
            )
        return value if self.read is None else self.read(value)

    def encode(self, value: Any) -> Any:
        """The wire value of the attribute's ``value``."""
        return value if value is None or self.write is None else self.write(value)


def _names(names: list[Any]) -> tuple[str, ...]:
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise MessageError(f"annotation name {index} is {preview(name)}, expected a string")
    return tuple(names)


ANNOTATION_FIELDS = (
    WireField(0, "created_date", "createdDate", "timestamp", dt.datetime),
    WireField(1, "name", "name", "str", str, required=True),
    WireField(2, "original_media_name", "originalMediaName", "str", str),
    WireField(3, "time_ticks", "time", "int (.NET ticks, 100 ns)", int),
    WireField(4, "image_extension", "imageExtension", 'str (".jpg")', str, required=True),
    WireField(
        5,
        "detections",
        "detections",
        "str (JSON, see `DETECTION_KEYS`)",
        str | bytes | list,
        read=parse_detections,
        write=format_detections,
        default=(),
    ),
    WireField(6, "image", "image", "bin (Created; optional for Edited)", bytes),
    WireField(
        7,
        "role",
        "createdRole",
        "int (`Role`)",
        int | str,
        required=True,
        read=lambda value: Role.parse(value, what="createdRole"),
        write=int,
    ),
    WireField(8, "email", "createdEmail", "str", str),
    WireField(
        9,
        "source",
        "source",
        "int (`Source`)",
        read=lambda value: Source.parse(value, what="source"),
        write=int,
    ),
    WireField(10, "status", "status", "int (`AnnotationStatus`)", write=int),
)
"""The body of a Created or Edited message, by position."""

BULK_FIELDS = (
    WireField(0, "names", "annotation names", "array of str", list, True, read=_names, write=list),
    WireField(1, "status", "status", "int or str", write=int),
    WireField(2, "email", "email", "str", str, lenient=True),
    WireField(3, "created_date", "createdDate", "timestamp", dt.datetime, lenient=True),
)
"""The body of a Validated or Deleted message, by position."""


@dataclass(frozen=True)
class Kind:
    """What a status carries: its value type, the fields of its body, whether it needs the
    image."""

    status: AnnotationStatus
    type: type[Annotation] | type[BulkAnnotations]
    fields: tuple[WireField, ...]
    needs_image: bool = False


KINDS = {
    kind.status: kind
    for kind in (
        Kind(AnnotationStatus.CREATED, Annotation, ANNOTATION_FIELDS, needs_image=True),
        Kind(AnnotationStatus.EDITED, Annotation, ANNOTATION_FIELDS),
        Kind(AnnotationStatus.VALIDATED, BulkAnnotations, BULK_FIELDS),
        Kind(AnnotationStatus.DELETED, BulkAnnotations, BULK_FIELDS),
    )
}
"""Every message kind by its status."""

SINGLE_STATUSES = frozenset(s for s, kind in KINDS.items() if kind.type is Annotation)
"""The statuses of messages that carry one annotation (Created, Edited)."""
BULK_STATUSES = frozenset(s for s, kind in KINDS.items() if kind.type is BulkAnnotations)
"""The statuses of messages that name many annotations (Validated, Deleted)."""
IMAGE_STATUSES = frozenset(s for s, kind in KINDS.items() if kind.needs_image)
"""The statuses whose message must carry the image (Created)."""


def field_table() -> str:
    """The table of positions in the module docstring, rendered from the field tables."""
    lines = [f"    {'key':<5}{'Annotation field':<22}{'wire type':<26}BulkAnnotations field"]
    bulk = {field.key: field for field in BULK_FIELDS}
    for field in ANNOTATION_FIELDS:
        row = f"    {field.key:<5}{field.attribute:<22}{field.wire:<26}"
        if field.key in bulk:
            other = bulk[field.key]
            optional = "" if other.required else "; optional"
            row += f"{other.attribute} ({other.wire}{optional})"
        lines.append(row.rstrip())
    return "\n".join(lines)


_DEFAULTS = QueueSettings()  # the defaults of the limits are the settings' defaults


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on what decoding one body may allocate (guards against compression and length
    bombs: a 4 KB gzip body can otherwise unpack to an array of millions of elements).

    Attributes:
        max_body_bytes: largest body after gzip inflation.
        max_inflate_ratio: a gzip body inflates to at most this many times its own size.
        max_names: most elements in one MessagePack array (the names of a bulk message).
    """

    max_body_bytes: int = _DEFAULTS.max_body_bytes
    max_inflate_ratio: float = _DEFAULTS.max_inflate_ratio
    max_names: int = _DEFAULTS.max_names

    @classmethod
    def of(cls, settings: QueueSettings) -> DecodeLimits:
        """The limits set in the ``queue`` settings."""
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_inflate_ratio=settings.max_inflate_ratio,
            max_names=settings.max_names,
        )


def decode_message(raw: bytes, limits: DecodeLimits = DecodeLimits()) -> Message:
    """Decodes the raw AMQP 1.0 bytes of one stream entry within ``limits``.

    Raises:
        MessageError: with a one-line reason; the entry is to be rejected.
    """
    body, properties = _decode_amqp(raw)
    if len(body) > limits.max_body_bytes:
        raise MessageError(f"body is {len(body)} bytes, more than {limits.max_body_bytes}")
    return decode_body(inflate(body, limits), status=properties.get(STATUS_PROPERTY), limits=limits)


def encode_message(message: Message, *, compress: bool = False) -> bytes:
    """The raw AMQP 1.0 bytes of ``message``, as the platform publishes it.

    Args:
        message: what to send.
        compress: gzip the MessagePack body.
    """
    body = encode_body(message)
    if compress:
        body = gzip.compress(body, mtime=0)
    return bytes(to_amqp(body=body, status=message.status))


def to_amqp(*, body: bytes, status: AnnotationStatus | str | int | None) -> AMQPMessage:
    """An AMQP message with ``body`` and the status property (an enum goes by its name).

    ``status=None`` leaves the property out; a string or number is sent as given (tests use that
    to send what the platform might).
    """
    value = status.wire_name if isinstance(status, AnnotationStatus) else status
    properties = {} if value is None else {STATUS_PROPERTY: value}
    return AMQPMessage(body=body, application_properties=properties)


def encode_body(message: Message) -> bytes:
    """The MessagePack body of ``message`` (an array by position, trailing nils left out)."""
    table = KINDS[message.status].fields
    fields = [field.encode(getattr(message, field.attribute)) for field in table]
    while fields and fields[-1] is None:
        fields.pop()
    return msgpack.packb(fields, use_bin_type=True, datetime=True)


def inflate(body: bytes, limits: DecodeLimits = DecodeLimits()) -> bytes:
    """``body`` itself, or inflated when it starts with the gzip magic bytes.

    Inflation stops at ``limits.max_body_bytes`` or ``limits.max_inflate_ratio`` times the
    compressed size, whichever is smaller; nothing beyond that bound is ever allocated.

    Raises:
        MessageError: broken gzip data, or more than the bound once inflated.
    """
    if not body.startswith(_GZIP_MAGIC):
        return body
    bound = min(limits.max_body_bytes, int(len(body) * limits.max_inflate_ratio))
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, bound + 1)
    except zlib.error as exc:
        raise MessageError(f"gzip body does not inflate: {exc}") from exc
    if len(data) > bound:
        raise MessageError(
            f"gzip body of {len(body)} bytes inflates to more than {bound} bytes "
            f"(limits: {limits.max_inflate_ratio:g} times, {limits.max_body_bytes} bytes)"
        )
    if not inflater.eof:
        raise MessageError("gzip body is truncated")
    return data


def decode_body(
    body: bytes,
    *,
    status: object = None,
    limits: DecodeLimits = DecodeLimits(),
) -> Message:
    """Decodes a MessagePack body (already inflated).

    Args:
        body: the MessagePack bytes.
        status: the ``AnnotationStatus`` property (name or number); when absent, the body's own
            status field is used.
        limits: bounds on lengths (see `DecodeLimits`).

    Raises:
        MessageError: with a one-line reason.
    """
    fields = _unpack(body, limits)
    if status is None:
        status = _status_in_body(fields)
    kind = KINDS[AnnotationStatus.parse(status, what="AnnotationStatus")]
    values = {
        field.attribute: field.decode(fields.get(field.key))
        for field in kind.fields
        if field.attribute != "status"
    }
    if kind.needs_image and not values.get("image"):
        key = _key(kind.fields, "image")
        raise MessageError(f"{kind.status.wire_name} annotation has no image (key {key})")
    return kind.type(status=kind.status, **values)


def _decode_amqp(raw: bytes) -> tuple[bytes, dict[str, object]]:
    if not isinstance(raw, bytes | bytearray | memoryview) or not raw:
        raise MessageError("empty stream entry")
    try:
        message = amqp_decoder(bytes(raw))
    except Exception as exc:  # the AMQP decoder raises whatever its parser hits on garbage
        raise MessageError(f"not an AMQP 1.0 message ({type(exc).__name__})") from exc
    body = message.body
    if isinstance(body, list) and all(isinstance(part, bytes) for part in body):
        body = b"".join(body)
    if body is None and isinstance(message.value, bytes):
        body = message.value
    if not isinstance(body, bytes) or not body:
        raise MessageError("AMQP message has no binary body")
    properties = {
        (k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)): v
        for k, v in (message.application_properties or {}).items()
    }
    return body, properties


def _unpack(body: bytes, limits: DecodeLimits) -> dict[int, Any]:
    containers = 0

    def count(value: Any) -> Any:
        nonlocal containers
        containers += 1
        if containers > MAX_CONTAINERS:
            raise MessageError(f"body holds more than {MAX_CONTAINERS} arrays and maps")
        return value

    try:
        value = msgpack.unpackb(
            body,
            raw=False,
            timestamp=3,
            strict_map_key=False,
            list_hook=count,
            object_hook=count,
            max_array_len=limits.max_names,
            max_map_len=64,
            max_str_len=MAX_STR_BYTES,
            max_bin_len=limits.max_body_bytes,
            max_ext_len=64,
        )
    except MessageError:
        raise
    except Exception as exc:  # msgpack raises ValueError, ExtraData, FormatError, StackError...
        raise MessageError(f"body is not MessagePack ({type(exc).__name__})") from exc
    if isinstance(value, list):
        return dict(enumerate(value))
    if isinstance(value, dict) and all(
        isinstance(k, int) and not isinstance(k, bool) for k in value
    ):
        return value
    raise MessageError(f"body is a MessagePack {type(value).__name__}, expected an array")


def _status_in_body(fields: Mapping[int, Any]) -> object:
    bulk = isinstance(fields.get(_key(BULK_FIELDS, "names")), list)
    position = _key(BULK_FIELDS if bulk else ANNOTATION_FIELDS, "status")
    if fields.get(position) is None:
        raise MessageError(f"no {STATUS_PROPERTY} property and no status in the body")
    return fields[position]


def _key(table: tuple[WireField, ...], attribute: str) -> int:
    return next(field.key for field in table if field.attribute == attribute)


def _kind_name(kind: Any) -> str:
    names = {str: "a string", bytes: "bytes", int: "an integer", list: "an array"}
    names[dt.datetime] = "a timestamp"
    parts = getattr(kind, "__args__", (kind,))
    return " or ".join(names.get(part, part.__name__) for part in parts)
