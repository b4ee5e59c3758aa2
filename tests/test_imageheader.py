"""Image sizes from headers (of `imageheader.py`): every accepted format, bombs, garbage."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.errors import MediaError
from azaion_training.imageheader import HEADER_FORMATS, check_image_size, image_size
from azaion_training.images import FORMATS, IMAGE_SUFFIXES
from tests.poison import HEADER_BOMB_FORMATS, image_bomb


@pytest.mark.parametrize("extension", sorted(IMAGE_SUFFIXES))
def test_the_size_of_every_format_of_the_table_comes_from_its_header(extension: str) -> None:
    data = cv2.imencode(extension, np.zeros((37, 53, 3), np.uint8))[1].tobytes()
    assert image_size(data) == (53, 37)


def test_every_format_of_the_table_has_a_header_reader() -> None:
    assert {f.header for f in FORMATS} == set(HEADER_FORMATS)


@pytest.mark.parametrize(
    ("shape", "dtype"), [((37, 53), np.uint16), ((37, 53, 4), np.uint8), ((37, 53, 3), np.uint16)]
)
def test_tiff_headers_of_16_bit_and_4_band_images(shape: tuple[int, ...], dtype: type) -> None:
    data = cv2.imencode(".tif", np.ones(shape, dtype), [cv2.IMWRITE_TIFF_COMPRESSION, 5])[1]
    assert image_size(data.tobytes()) == (53, 37)


@pytest.mark.parametrize("fmt", HEADER_BOMB_FORMATS)
def test_bombs_are_measured_without_decoding(fmt: str) -> None:
    assert image_size(image_bomb(fmt, 16_000, 9_000)) == (16_000, 9_000)
    with pytest.raises(MediaError, match=r"16000x9000 pixels \(144\.0 megapixels\)"):
        check_image_size(image_bomb(fmt, 16_000, 9_000), max_megapixels=100)
    assert check_image_size(image_bomb(fmt, 10_000, 10_000), max_megapixels=100) == (
        10_000,
        10_000,
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image",
        b"GIF89a" + b"\x00" * 20,  # a real format, but not one the queue accepts
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 8,  # truncated before IHDR
        b"\xff\xd8\xff\xe0",  # JPEG start, nothing else
        b"II*\x00" + b"\xff" * 8,  # TIFF start, an IFD offset past the end
    ],
)
def test_garbage_and_other_formats_are_refused(data: bytes) -> None:
    with pytest.raises(MediaError, match="not a JPEG, PNG, BMP, WebP or TIFF image"):
        image_size(data)


def test_a_path_is_read_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(image_bomb("png", 12_000, 12_000))
    assert image_size(path) == (12_000, 12_000)
    with pytest.raises(FileNotFoundError):
        image_size(tmp_path / "absent.png")


def test_garbage_is_refused_after_ultralytics_patched_pillow() -> None:
    # Ultralytics replaces PIL.Image.open with a wrapper that pip-installs a HEIF plugin on any
    # file Pillow cannot identify; a training process (the demo, azaion-train) has it loaded.
    import PIL.Image
    import ultralytics.utils.patches  # noqa: F401

    assert PIL.Image.open.__module__ == "ultralytics.utils.patches"
    for garbage in (b"not an image", b"\xff\xd8\xff\xe0", b"GIF89a" + bytes(20)):
        with pytest.raises(MediaError):
            image_size(garbage)
