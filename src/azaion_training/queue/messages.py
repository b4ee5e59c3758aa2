"""The values of the annotation stream's messages (SPEC 5.2): kinds, roles, boxes, events.

`Annotation` is a Created or Edited event (one annotation, its boxes and usually its image);
`BulkAnnotations` a Validated or Deleted event naming many. Their wire form (AMQP 1.0 with a
MessagePack body, field by position) is `queue.wire`, which holds the one field table.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Union

from azaion_training.errors import MessageError
from azaion_training.labels import Box


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
        raise MessageError(f"{what} {preview(value)} is not one of {known}")

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
        raise MessageError(f"{what} is {preview(value)}, expected a number")
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


def preview(value: object) -> str:
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
