"""Image dimensions read from the header, before any pixel is decoded: the guard against image
bombs (a 140 KB PNG can declare 12000x12000 pixels, gigabytes once decoded).

Both daemons check every image against a pixel budget with `check_image_size` before they
decode it: the queue consumer for each image a message brings, the augmenter for each source;
`azaion-convert` reads its sizes here too. The formats of `azaion_training.images.FORMATS` are
parsed (JPEG, PNG, BMP, WebP, TIFF with GeoTIFF); anything else is refused.

Example:
    >>> import cv2, numpy as np
    >>> png = cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))[1].tobytes()
    >>> check_image_size(png, max_megapixels=1.0)
    (30, 20)
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from PIL import (
    BmpImagePlugin,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from azaion_training.errors import MediaError

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF

HEADER_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF")
"""The image formats whose headers are read (Pillow's names; `images.ImageFormat.header`)."""

_READERS: dict[str, tuple[Callable[[bytes], bool], type[ImageFile.ImageFile]]] = {
    "JPEG": (lambda head: head.startswith(b"\xff\xd8\xff"), JpegImagePlugin.JpegImageFile),
    "PNG": (lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"), PngImagePlugin.PngImageFile),
    "BMP": (lambda head: head.startswith(b"BM"), BmpImagePlugin.BmpImageFile),
    "WEBP": (
        lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP",
        WebPImagePlugin.WebPImageFile,
    ),
    "TIFF": (lambda head: head[:4] in _TIFF_MAGIC, TiffImagePlugin.TiffImageFile),
}
"""Magic bytes -> Pillow's reader of that format. The readers are called directly, not through
``PIL.Image.open``: that one checks a process-wide pixel limit (we check our own) and Ultralytics
replaces it with a function that tries to pip-install a HEIF plugin on any unknown file."""


def image_size(source: bytes | Path) -> tuple[int, int]:
    """``(width, height)`` of an encoded image, from its header only.

    Raises:
        MediaError: not an image of one of `HEADER_FORMATS`, or its header is broken.
        OSError: ``source`` is a path that cannot be read.
    """
    if isinstance(source, bytes | bytearray):
        return _header_size(io.BytesIO(source))
    with open(source, "rb") as stream:
        return _header_size(stream)


def _header_size(stream: BinaryIO) -> tuple[int, int]:
    head = stream.read(12)
    stream.seek(0)
    reader = next((reader for matches, reader in _READERS.values() if matches(head)), None)
    if reader is None:
        raise MediaError("not a JPEG, PNG, BMP, WebP or TIFF image (unknown header)")
    try:
        with warnings.catch_warnings():  # Pillow warns (UserWarning) on some broken headers
            warnings.simplefilter("ignore")
            with reader(stream) as image:
                width, height = image.size
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, struct.error) as exc:
        # what Pillow's readers raise on garbage
        kind = type(exc).__name__
        raise MediaError(f"not a JPEG, PNG, BMP, WebP or TIFF image ({kind})") from exc
    if width <= 0 or height <= 0:
        raise MediaError(f"image header declares {width}x{height} pixels")
    return int(width), int(height)


def check_image_size(source: bytes | Path, *, max_megapixels: float) -> tuple[int, int]:
    """``(width, height)`` of an image whose header declares at most ``max_megapixels``.

    Raises:
        MediaError: too large, or not a readable image header (see `image_size`).
    """
    size = image_size(source)
    check_pixels(size, max_megapixels=max_megapixels)
    return size


def check_pixels(size: tuple[int, int], *, max_megapixels: float) -> None:
    """Checks that an image of ``size`` (width, height) has at most ``max_megapixels``.

    Raises:
        MediaError: it has more.
    """
    width, height = size
    if width * height > max_megapixels * 1_000_000:
        raise MediaError(
            f"image is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), "
            f"more than the {max_megapixels:g} allowed"
        )
