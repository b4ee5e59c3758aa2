"""Hostile inputs for the daemon tests, generated (not a fixed list): image bombs whose headers
declare huge sizes in a few bytes, names of 100-300 UTF-8 bytes in several scripts, names with
control characters, and MessagePack length amplification inside gzip."""

from __future__ import annotations

import gzip
import io
import random
import struct
import zlib
from dataclasses import replace

import cv2
import numpy as np
from PIL import Image

from azaion_training.queue.messages import Annotation
from azaion_training.queue.wire import encode_message, to_amqp
from tests.queue.helpers import created

BOMB_FORMATS = ("png", "bmp", "webp", "jpeg")
HEADER_BOMB_FORMATS = (*BOMB_FORMATS, "tiff")  # TIFF: read by the augmenter, not the queue
SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyz",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюя",
    "greek": "αβγδεζηθικλμνξοπρστυφχψω",
    "cjk": "日本語中文字漢山川田",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "emoji": "\U0001f600\U0001f680\U0001f30d\U0001f4a5",
}
CONTROL_CHARACTERS = (
    "\x00",
    "\t",
    "\n",
    "\r",
    "\x1b",
    "\x7f",
    "\x85",
    "\u202e",
    "\u2028",
    "\ufeff",
)


def image_bomb(fmt: str, width: int = 12_000, height: int = 12_000) -> bytes:
    """A small file whose header declares ``width`` x ``height`` pixels (decoding it in colour
    would take ``3 * width * height`` bytes). PNG and BMP are complete and decodable."""
    makers = {"png": _png, "bmp": _bmp, "webp": _webp, "jpeg": _jpeg, "tiff": _tiff}
    return makers[fmt](width, height)


def _png(width: int, height: int) -> bytes:
    """A complete 1-bit grey PNG: every row is one filter byte and ``width / 8`` zero bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" * (1 + (width + 7) // 8)
    deflate = zlib.compressobj(9)
    pixels = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _bmp(width: int, height: int) -> bytes:
    """A run-length encoded (RLE8) BMP whose pixel data is one "end of bitmap" code."""
    pixels = b"\x00\x01"
    palette = b"\x00\x00\x00\x00" * 256
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 0, 0, 256, 0)
    header = struct.pack("<2sIHHI", b"BM", offset + len(pixels), 0, 0, offset)
    return header + info + palette + pixels


def _webp(width: int, height: int) -> bytes:
    """A 1x1 lossless WebP whose VP8L header is rewritten to ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="WEBP", lossless=True)
    data = bytearray(buffer.getvalue())
    at = data.index(b"VP8L") + 8  # chunk tag, size; then the signature byte 0x2f
    assert data[at] == 0x2F
    bits = struct.unpack("<I", data[at + 1 : at + 5])[0] & ~((1 << 28) - 1)
    bits |= (width - 1) | ((height - 1) << 14)
    data[at + 1 : at + 5] = struct.pack("<I", bits)
    return bytes(data)


def _jpeg(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to ``width`` x ``height``."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    at = data.index(b"\xff\xc0") + 5  # marker, length, precision; then height, width
    data[at : at + 4] = struct.pack(">HH", height, width)
    return bytes(data)


def _tiff(width: int, height: int) -> bytes:
    """A little-endian grey TIFF whose one IFD declares ``width`` x ``height`` and one strip of
    a single byte (the header is whole; the pixels are not there)."""
    tags = [  # (tag, type, count, value): type 3 SHORT, 4 LONG
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, 1),
    ]
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    return b"II*\x00" + struct.pack("<I", 9) + b"\x00" + ifd + struct.pack("<I", 0)


def long_names(rng: random.Random, *, count: int) -> list[str]:
    """Names of 100 to 300 UTF-8 bytes, in every script of `SCRIPTS`."""
    names = []
    for index in range(count):
        letters = list(SCRIPTS.values())[index % len(SCRIPTS)]
        target = rng.randint(100, 300)
        name = ""
        while len(name.encode()) < target:
            name += rng.choice(letters)
        names.append(name)
    return names


def control_names(rng: random.Random) -> list[str]:
    """Ordinary names with one control or invisible character each."""
    return [f"img{rng.randint(0, 999)}{ch}x" for ch in CONTROL_CHARACTERS]


def msgpack_amplification(elements: int = 5_000_000) -> bytes:
    """A gzip body inflating to one MessagePack array of ``elements`` nils (a few KB
    compressed; unbounded, it unpacks to a list of that many references)."""
    return gzip.compress(b"\xdd" + struct.pack(">I", elements) + b"\xc0" * elements, 9)


def poison_corpus(seed: int = 0) -> list[tuple[str, bytes]]:
    """Hostile stream entries by category, generated from ``seed``: long names in several
    scripts (those of at most 200 UTF-8 bytes are valid), control characters, image bombs,
    MessagePack length bombs (plain and gzipped), truncated entries, a body over 1 MiB."""
    rng = random.Random(seed)
    entries = [("long name", encode_message(created(n))) for n in long_names(rng, count=24)]
    entries += [("control character", encode_message(created(n))) for n in control_names(rng)]
    for fmt in BOMB_FORMATS:
        bomb = _replace_image(created(f"bomb_{fmt}"), image_bomb(fmt), fmt)
        entries.append((f"{fmt} bomb", encode_message(bomb)))
    for status in ("Created", "Deleted"):
        entries.append(
            ("msgpack in gzip", bytes(to_amqp(body=msgpack_amplification(), status=status)))
        )
    for body in (b"\x91" * 1010 + b"\xc0", b"\xdc\x07\xd0" + b"\x90" * 2000):
        entries.append(("msgpack containers", bytes(to_amqp(body=body, status="Deleted"))))
    whole = encode_message(created("truncated", seed=3))
    for _ in range(8):
        entries.append(("truncated", whole[: rng.randint(1, len(whole) - 1)]))
    big = _replace_image(created("oversized"), rng.randbytes(1536 * 1024), "jpeg")
    entries.append(("oversized body", encode_message(big)))
    return entries


def _replace_image(annotation: Annotation, image: bytes, fmt: str) -> Annotation:
    return replace(annotation, image=image, image_extension=".jpg" if fmt == "jpeg" else f".{fmt}")
