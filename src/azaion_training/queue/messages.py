"""The wire messages of the annotation stream: one typed definition, decoder and encoder (SPEC 5.2).

Each stream entry is an AMQP 1.0 message. Its AMQP application property ``AnnotationStatus``
names the kind (enum name such as ``"Created"``, or its number) and its body is MessagePack,
optionally gzipped. Created and Edited carry one annotation (`Annotation`) as an array (or a map
with integer keys) by position; Validated and Deleted carry a list of names (`BulkAnnotations`).

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
import functools
import gzip
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Union

import msgpack
from rstream import AMQPMessage, amqp_decoder

from azaion_training.config import QueueSettings
from azaion_training.errors import MessageError
from azaion_training.labels import Box

STATUS_PROPERTY = "AnnotationStatus"
"""The AMQP application property that carries the routing status."""

MAX_CONTAINERS = 1000
"""Most MessagePack arrays and maps in one body (a message has two at most)."""
MAX_STR_BYTES = 16 * 1024 * 1024
"""Longest MessagePack string (the detections JSON is the longest one sent)."""

_GZIP_MAGIC = b"\x1f\x8b"


class _WireEnum(IntEnum):
    """An enum sent as its number, also accepted by its name (any case)."""

    @classmethod
    def parse(cls, value: object, *, what: str) -> _WireEnum:
        """The member for a number, a numeric string or a name; raises `MessageError`."""
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if isinstance(value, str):
            text = value.strip()
            by_name = {_squash(member.wire_name): member for member in cls}
            if _squash(text) in by_name:
                return by_name[_squash(text)]
            if text.lstrip("-").isdigit():
                value = int(text)
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        known = ", ".join(f"{m.wire_name} {m.value}" for m in cls)
        raise MessageError(f"{what} {_preview(value)} is not one of {known}")

    @property
    def wire_name(self) -> str:
        """The platform's (C#) name of the member."""
        return "".join(part.capitalize() for part in self.name.split("_"))


class AnnotationStatus(_WireEnum):
    """The kind of an annotation event."""

    CREATED = 10
    EDITED = 20
    VALIDATED = 30
    DELETED = 40


class Role(_WireEnum):
    """The role of the user who made an annotation."""

    OPERATOR = 10
    VALIDATOR = 20
    COMPANION_PC = 30
    ADMIN = 40
    API_ADMIN = 1000

    @property
    def wire_name(self) -> str:
        return {"COMPANION_PC": "CompanionPC", "API_ADMIN": "ApiAdmin"}.get(
            self.name, self.name.capitalize()
        )

    @property
    def validates(self) -> bool:
        """True for the roles whose annotations are validated as made (SPEC 5.3)."""
        return self in VALIDATOR_ROLES


VALIDATOR_ROLES = frozenset({Role.VALIDATOR, Role.ADMIN, Role.API_ADMIN})


class Source(_WireEnum):
    """Whether an annotation was drawn by a person or proposed by a model."""

    AI = 0
    MANUAL = 1

    @property
    def wire_name(self) -> str:
        return "AI" if self is Source.AI else "Manual"


SINGLE_STATUSES = frozenset({AnnotationStatus.CREATED, AnnotationStatus.EDITED})
BULK_STATUSES = frozenset({AnnotationStatus.VALIDATED, AnnotationStatus.DELETED})


DETECTION_KEYS: dict[str, tuple[str, ...]] = {
    "cx": ("x", "cx", "centerx", "centrex", "xcenter"),
    "cy": ("y", "cy", "centery", "centrey", "ycenter"),
    "w": ("w", "width"),
    "h": ("h", "height"),
    "class_id": ("cls", "class", "classnum", "classnumber", "classid"),
    "confidence": ("confidence", "probability", "conf", "score"),
}
"""Every accepted spelling of each detection field, the one place they are written down.

A key of the detections JSON matches when, lower-cased and with ``_`` and ``-`` removed, it equals
one of these: ``centerX``, ``center_x`` and ``CENTERX`` all read as ``cx``. The writer
(`Detection.to_json`) uses the first spelling of the platform's camel case: ``centerX``,
``centerY``, ``width``, ``height``, ``classNum``, ``probability``.
"""

_WRITE_KEYS = {
    "cx": "centerX",
    "cy": "centerY",
    "w": "width",
    "h": "height",
    "class_id": "classNum",
    "confidence": "probability",
}
_READ_KEYS = {
    spelling: name for name, spellings in DETECTION_KEYS.items() for spelling in spellings
}


@dataclass(frozen=True)
class Detection:
    """One box of an annotation: a YOLO box (class slot, normalised centre and size) and an
    optional model confidence in ``[0, 1]``."""

    box: Box
    confidence: float | None = None

    def to_json(self) -> dict[str, float | int]:
        """The box as a JSON object with the platform's key spelling."""
        item: dict[str, float | int] = {
            _WRITE_KEYS["cx"]: self.box.cx,
            _WRITE_KEYS["cy"]: self.box.cy,
            _WRITE_KEYS["w"]: self.box.w,
            _WRITE_KEYS["h"]: self.box.h,
            _WRITE_KEYS["class_id"]: self.box.class_id,
        }
        if self.confidence is not None:
            item[_WRITE_KEYS["confidence"]] = self.confidence
        return item


def parse_detections(text: object) -> tuple[Detection, ...]:
    """Reads the detections JSON of an annotation, tolerant of key spelling (`DETECTION_KEYS`).

    ``None``, an empty string and ``[]`` mean no boxes. Values must be numbers; whether they are
    in range is checked by the label rules when the label is written.

    Raises:
        MessageError: not JSON, not a list of objects, or a box lacks a field.
    """
    if text is None or (isinstance(text, str | bytes) and not text.strip()):
        return ()
    if isinstance(text, str | bytes):
        try:
            text = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise MessageError(f"detections are not valid JSON: {exc}") from exc
    if not isinstance(text, list):
        raise MessageError(f"detections are {type(text).__name__}, expected a JSON list of boxes")
    return tuple(_parse_detection(item, index) for index, item in enumerate(text))


def format_detections(detections: Sequence[Detection]) -> str:
    """The detections JSON of ``detections`` (the platform's key spelling)."""
    return json.dumps([d.to_json() for d in detections], separators=(",", ":"))


def _parse_detection(item: object, index: int) -> Detection:
    if not isinstance(item, dict):
        raise MessageError(f"detection {index} is {type(item).__name__}, expected an object")
    values: dict[str, object] = {}
    for key, value in item.items():
        name = _field(str(key))
        if name is not None:
            values[name] = value
    missing = [name for name in ("cx", "cy", "w", "h", "class_id") if name not in values]
    if missing:
        raise MessageError(f"detection {index} lacks {', '.join(missing)} (keys: {sorted(item)})")
    cx, cy, w, h, class_id = (
        _number(values[name], what=f"detection {index} {name}")
        for name in ("cx", "cy", "w", "h", "class_id")
    )
    if not float(class_id).is_integer():
        raise MessageError(f"detection {index} class {class_id!r} is not a whole number")
    confidence = values.get("confidence")
    if confidence is not None:
        confidence = float(_number(confidence, what=f"detection {index} confidence"))
    return Detection(
        box=Box(class_id=int(class_id), cx=float(cx), cy=float(cy), w=float(w), h=float(h)),
        confidence=confidence,
    )


def _number(value: object, *, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MessageError(f"{what} is {_preview(value)}, expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise MessageError(f"{what} is {value}, expected a finite number")
    return value


@dataclass(frozen=True)
class Annotation:
    """A Created or Edited event: one annotation with its boxes and (usually) its image.

    Attributes:
        status: `AnnotationStatus.CREATED` or `AnnotationStatus.EDITED`.
        name: the annotation name, used as the file stem (checked when applied).
        image_extension: the image file extension with its dot, e.g. ``.jpg``.
        detections: the boxes.
        role: who made the annotation; decides between ``data/`` and ``data-seed/``.
        image: the encoded image bytes; always there for Created, optional for Edited.
        created_date: when it was made (UTC), if sent.
        original_media_name: the source video or image, if sent.
        time_ticks: position in the source media in .NET ticks (100 ns), if sent.
        email: the author's e-mail, if sent.
        source: AI or manual, if sent.
    """

    status: AnnotationStatus
    name: str
    image_extension: str
    detections: tuple[Detection, ...]
    role: Role
    image: bytes | None = field(default=None, repr=False)
    created_date: dt.datetime | None = None
    original_media_name: str | None = None
    time_ticks: int | None = None
    email: str | None = None
    source: Source | None = None

    @property
    def boxes(self) -> list[Box]:
        return [d.box for d in self.detections]


@dataclass(frozen=True)
class BulkAnnotations:
    """A Validated or Deleted event naming many annotations.

    Attributes:
        status: `AnnotationStatus.VALIDATED` or `AnnotationStatus.DELETED`.
        names: the annotation names (checked when applied).
        email: who did it, if sent.
        created_date: when (UTC), if sent.
    """

    status: AnnotationStatus
    names: tuple[str, ...]
    email: str | None = None
    created_date: dt.datetime | None = None


Message = Union[Annotation, BulkAnnotations]  # noqa: UP007 - a runtime alias, also on 3.10


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
    """The MessagePack body of ``message`` (an array by position)."""
    if isinstance(message, BulkAnnotations):
        fields: list[Any] = [list(message.names), int(message.status), message.email]
        fields.append(message.created_date)
    else:
        fields = [
            message.created_date,
            message.name,
            message.original_media_name,
            message.time_ticks,
            message.image_extension,
            format_detections(message.detections),
            message.image,
            int(message.role),
            message.email,
            None if message.source is None else int(message.source),
            int(message.status),
        ]
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
    kind = AnnotationStatus.parse(status, what="AnnotationStatus")
    if kind in BULK_STATUSES:
        return _bulk(fields, kind)
    return _annotation(fields, kind)


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
    names = fields.get(0)
    position = 1 if isinstance(names, list) else 10
    if fields.get(position) is None:
        raise MessageError(f"no {STATUS_PROPERTY} property and no status in the body")
    return fields[position]


def _annotation(fields: Mapping[int, Any], status: AnnotationStatus) -> Annotation:
    image = _optional(fields, 6, bytes, "image")
    if status is AnnotationStatus.CREATED and not image:
        raise MessageError("Created annotation has no image (key 6)")
    return Annotation(
        status=status,
        name=_required(fields, 1, str, "name"),
        image_extension=_required(fields, 4, str, "imageExtension"),
        detections=parse_detections(_optional(fields, 5, str | bytes | list, "detections")),
        role=Role.parse(_required(fields, 7, int | str, "createdRole"), what="createdRole"),
        image=image,
        created_date=_optional(fields, 0, dt.datetime, "createdDate"),
        original_media_name=_optional(fields, 2, str, "originalMediaName"),
        time_ticks=_optional(fields, 3, int, "time"),
        email=_optional(fields, 8, str, "createdEmail"),
        source=_source(fields.get(9)),
    )


def _bulk(fields: Mapping[int, Any], status: AnnotationStatus) -> BulkAnnotations:
    names = _required(fields, 0, list, "annotation names")
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise MessageError(f"annotation name {index} is {_preview(name)}, expected a string")
    email, date = fields.get(2), fields.get(3)
    return BulkAnnotations(
        status=status,
        names=tuple(names),
        email=email if isinstance(email, str) else None,
        created_date=date if isinstance(date, dt.datetime) else None,
    )


def _source(value: object) -> Source | None:
    return None if value is None else Source.parse(value, what="source")


def _required(fields: Mapping[int, Any], key: int, kind: Any, what: str) -> Any:
    if fields.get(key) is None:
        raise MessageError(f"{what} (key {key}) is missing")
    return _optional(fields, key, kind, what)


def _optional(fields: Mapping[int, Any], key: int, kind: Any, what: str) -> Any:
    value = fields.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise MessageError(f"{what} (key {key}) is {_preview(value)}, expected {_kind_name(kind)}")
    return value


def _kind_name(kind: Any) -> str:
    names = {str: "a string", bytes: "bytes", int: "an integer", list: "an array"}
    names[dt.datetime] = "a timestamp"
    parts = getattr(kind, "__args__", (kind,))
    return " or ".join(names.get(part, part.__name__) for part in parts)


def _preview(value: object) -> str:
    """A short, byte-free description of a wire value for error messages."""
    if isinstance(value, bytes | bytearray):
        return f"{len(value)} bytes"
    if isinstance(value, str):
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    if isinstance(value, int | float | bool) or value is None:
        return repr(value)
    return f"a {type(value).__name__}"


def _field(key: str) -> str | None:
    """The detection field a JSON key spells (`DETECTION_KEYS`), or ``None``."""
    return _known_field(key) if len(key) <= 32 else _READ_KEYS.get(_squash(key))


@functools.lru_cache(maxsize=256)
def _known_field(key: str) -> str | None:  # the platform repeats a few spellings
    return _READ_KEYS.get(_squash(key))


def _squash(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def ticks(seconds: float) -> int:
    """.NET ticks (100 ns) of a duration in seconds."""
    return round(seconds * 10_000_000)


def utc_now() -> dt.datetime:
    """Now, in UTC, at millisecond precision (what a MessagePack timestamp round-trips)."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
