"""Generated malformed stream entries, each with the reason it must be rejected for.

Every entry is built to be wrong in exactly one known way; ``IMAGE_MARKER`` sits inside the image
bytes of entries whose image is broken, so a test can check that no image bytes reach a log line or
a reason.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator

import msgpack
import numpy as np

from azaion_training.queue.wire import encode_body, to_amqp
from tests.queue.helpers import created, jpeg

IMAGE_MARKER = b"PIXELSECRET"

UNSAFE_NAMES = [
    "../../x",
    "/etc/passwd",
    "a/b",
    ".hidden",
    "..",
    "a\\b",
    "a\x00b",
    "line\nbreak",
    "n" * 10_240,
    "",
    "x" * 201,
    "../../../../tmp/escaped",
    "./relative",
    "dir/../../up",
    "я" * 130,  # 260 bytes: over the 255-byte file-name limit of most file systems
    "日" * 67,  # 201 bytes
    "a\u202eb",  # right-to-left override
    "zero\u200bwidth",
]
BAD_EXTENSIONS = [".gif", ".exe", "", ".", ".jpg/../../x", ".php", "jpg.sh", ".tiff", "\x00.jpg"]


def _fields(**changes: object) -> dict[int, object]:
    fields = dict(enumerate(msgpack.unpackb(encode_body(created("valid_name")), timestamp=3)))
    for key, value in changes.items():
        fields[int(key.lstrip("k"))] = value
    return fields


def _entry(fields: object, *, status: object = "Created", compress: bool = False) -> bytes:
    body = msgpack.packb(fields, use_bin_type=True, datetime=True)
    return bytes(to_amqp(body=gzip.compress(body) if compress else body, status=status))


def _as_list(fields: dict[int, object]) -> list[object]:
    return [fields.get(key) for key in range(max(fields) + 1)]


_WRONG_VALUES: dict[int, list[object]] = {
    0: ["yesterday", 17, [1, 2], {"a": 1}, b"bytes"],  # createdDate
    1: [42, 3.5, ["a"], {"n": 1}, b"name", True],  # name
    2: [5, ["x"], b"media", {"m": 1}],  # originalMediaName
    3: ["noon", 1.5, ["1"], b"t"],  # time
    4: [7, [".jpg"], b".jpg", {"e": 1}],  # imageExtension
    5: [17, 2.5, {"x": 1}, True],  # detections
    6: ["not bytes", 12, [1, 2, 3], {"i": 1}],  # image
    7: [55, "Boss", [20], 2.5, {"r": 1}, -1, True],  # createdRole
    8: [12, ["e"], b"mail"],  # createdEmail
    9: [7, "Robot", [1], 2.5],  # source
}
_REQUIRED_KEYS = [1, 4, 6, 7]  # name, imageExtension, image (Created), createdRole


def malformed_entries(seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """Yields ``(category, entry)`` pairs: well over 1,000 of them, all to be rejected."""
    rng = np.random.default_rng(seed)
    image, _ = jpeg(seed)
    generators: list[Callable[[], Iterator[tuple[str, bytes]]]] = [
        lambda: _random_bytes(rng),
        lambda: _random_bodies(rng),
        _wrong_types,
        _missing_fields,
        lambda: _unsafe_names(image),
        lambda: _bad_extensions(image),
        lambda: _undecodable_images(rng),
        _invalid_boxes,
        _bad_statuses,
        lambda: _bad_bulks(rng),
        lambda: _bad_gzip(rng),
    ]
    for generate in generators:
        yield from generate()


def _random_bytes(rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    for _ in range(350):
        yield "random bytes", rng.bytes(int(rng.integers(0, 3000)))


def _random_bodies(rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    for _ in range(250):
        body = rng.bytes(int(rng.integers(1, 500)))
        yield "random body", bytes(to_amqp(body=body, status="Created"))


def _wrong_types() -> Iterator[tuple[str, bytes]]:
    for key, values in _WRONG_VALUES.items():
        for value in values:
            for shape in (_as_list, dict):
                yield f"wrong type at key {key}", _entry(shape(_fields(**{f"k{key}": value})))


def _missing_fields() -> Iterator[tuple[str, bytes]]:
    for key in _REQUIRED_KEYS:
        fields = _fields()
        del fields[key]
        yield f"missing key {key}", _entry(fields)
        yield f"nil at key {key}", _entry(_as_list(_fields(**{f"k{key}": None})))
    for cut in range(0, 7):
        yield "short array", _entry(_as_list(_fields())[:cut])


def _unsafe_names(image: bytes) -> Iterator[tuple[str, bytes]]:
    for name in UNSAFE_NAMES:
        for compress in (False, True):
            yield "unsafe name", _entry(_fields(k1=name, k6=image), compress=compress)
            yield "unsafe name in bulk", _entry([["fine", name]], status="Deleted")
            yield "unsafe name in bulk", _entry([[name]], status="Validated", compress=compress)
        yield "unsafe name in edit", _entry(_fields(k1=name, k6=None), status="Edited")


def _bad_extensions(image: bytes) -> Iterator[tuple[str, bytes]]:
    for extension in BAD_EXTENSIONS:
        for role in (10, 20):
            yield "bad extension", _entry(_fields(k4=extension, k6=image, k7=role))


def _undecodable_images(rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    headers = [b"", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF\x00\x00\x00\x00WEBP"]
    for header in headers:
        for _ in range(20):
            noise = rng.bytes(int(rng.integers(0, 400)))
            yield "undecodable image", _entry(_fields(k6=header + IMAGE_MARKER + noise))


def _invalid_boxes() -> Iterator[tuple[str, bytes]]:
    base = {"centerX": 0.5, "centerY": 0.5, "width": 0.1, "height": 0.1, "classNum": 1}
    changes = [
        {"classNum": 80},
        {"classNum": -1},
        {"classNum": 1000},
        {"centerX": 1.5},
        {"centerY": -0.2},
        {"width": 2},
        {"height": -1},
        {"centerX": "0.5"},
        {"classNum": None},
        {"width": True},
        {"classNum": 2.5},
        {"height": 1e309},
    ]
    for change in changes:
        box = {**base, **change}
        for text in (json.dumps([box]), json.dumps([base, box])):
            yield "invalid box", _entry(_fields(k5=text))
    for text in ["{", "[", "null null", '"text"', "[[1,2]]", '[{"x": }]', "[" * 5000 + "]" * 5000]:
        yield "bad detections JSON", _entry(_fields(k5=text))


def _bad_statuses() -> Iterator[tuple[str, bytes]]:
    for status in ["Approved", "", "Create", 0, 11, 50, -10, 3.5, b"\xff\xfe"]:
        yield "bad status", _entry(_as_list(_fields()), status=status)
    yield "no status", _entry(_as_list(_fields(k10=None)), status=None)
    yield "bulk body under a single status", _entry([["a", "b"]], status="Created")
    yield "single body under a bulk status", _entry(_as_list(_fields()), status="Deleted")


def _bad_bulks(rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    for names in ["a", 5, None, {"a": 1}, [1, 2], [["a"]], [b"a"], [None]]:
        for status in ("Validated", "Deleted"):
            yield "bad bulk", _entry([names], status=status)
    for _ in range(20):
        yield "bulk of random names", _entry([[rng.bytes(8)]], status="Deleted")


def _bad_gzip(rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    good = gzip.compress(encode_body(created("gz")))
    for cut in range(10, len(good) - 8, max(1, len(good) // 40)):
        yield "truncated gzip", bytes(to_amqp(body=good[:cut], status="Created"))
    for _ in range(30):
        body = b"\x1f\x8b" + rng.bytes(int(rng.integers(1, 200)))
        yield "broken gzip", bytes(to_amqp(body=body, status="Created"))
