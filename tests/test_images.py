"""The image-format table and the one conversion to the model's input (`images.py`), on generated
GeoTIFFs: 16-bit 1-band and 8-bit 4-band, LZW, with GeoTIFF tags."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from azaion_training.errors import MediaError
from azaion_training.imageheader import image_size
from azaion_training.images import (
    FORMATS,
    IMAGE_SUFFIXES,
    QUEUE_SUFFIXES,
    ToRGB,
    decode,
    format_of,
    sample_suffix,
    to_model_rgb,
)
from azaion_training.queue.handlers import IMAGE_EXTENSIONS
from tests.imagery import aerial_scene, geotiff


def test_one_table_gives_every_list_of_endings() -> None:
    assert IMAGE_EXTENSIONS == QUEUE_SUFFIXES == (".jpg", ".jpeg", ".png", ".bmp", ".webp")
    assert {".tif", ".tiff"} <= IMAGE_SUFFIXES
    assert format_of("x.TIFF") is FORMATS[-1] and not FORMATS[-1].queue
    assert (sample_suffix(".jpg"), sample_suffix(".tif"), sample_suffix(".TIF")) == (
        ".jpg",
        ".png",
        ".png",
    )


def test_a_16_bit_panchromatic_geotiff_is_stretched_to_visible_grey(
    capfd: pytest.CaptureFixture[str],
) -> None:
    scene, boxes = aerial_scene(96, 128)
    data = geotiff(scene)
    assert image_size(data) == (128, 96)
    stored = decode(data)
    assert stored.dtype == np.uint16 and np.array_equal(stored, scene)
    rgb = to_model_rgb(stored, ToRGB())
    assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    assert capfd.readouterr().err == "", "no OpenCV or libtiff warning reaches the console"
    # OpenCV's own reading (IMREAD_COLOR: the top 8 bits) leaves a 12-bit image nearly black.
    naive = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert naive.max() <= 15
    cx, cy, _, _ = boxes[0]
    x, y = round(cx * 128), round(cy * 96)
    assert rgb[y, x, 0] >= 200, "an object is bright"
    assert np.median(rgb) <= 60, "the ground is dark"


def test_a_4_band_geotiff_gives_its_rgb_or_the_chosen_bands() -> None:
    rng = np.random.default_rng(1)
    bands = rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)
    stored = decode(geotiff(bands))
    assert np.array_equal(stored, bands), "every band as stored, none premultiplied by band 4"
    assert np.array_equal(to_model_rgb(stored, ToRGB()), bands[..., :3])
    false_colour = to_model_rgb(stored, ToRGB(bands=(4, 3, 2)))
    assert np.array_equal(false_colour, bands[..., [3, 2, 1]])
    with pytest.raises(MediaError, match=r"4 band\(s\); images.bands asks for band 5"):
        to_model_rgb(stored, ToRGB(bands=(5, 3, 2)))


def test_a_fixed_range_maps_linearly_and_clips() -> None:
    values = np.array([[0, 1000, 2047, 4095, 65535]], np.uint16)
    grey = to_model_rgb(values, ToRGB(fixed_range=(0, 4095)))[..., 0]
    assert grey.tolist() == [[0, 62, 127, 255, 255]]


def test_percentiles_ignore_a_few_hot_pixels() -> None:
    scene = np.full((50, 50), 1000, np.uint16)
    scene[:, 25:] = 2000
    scene[0, :3] = 65535  # three saturated pixels
    grey = to_model_rgb(scene, ToRGB())[..., 0]
    assert grey[10, 10] == 0 and grey[10, 40] == 255


def test_8_bit_images_pass_unchanged() -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    png = cv2.imencode(".png", rgb[..., ::-1])[1].tobytes()
    assert np.array_equal(to_model_rgb(decode(png), ToRGB()), rgb)


@pytest.mark.parametrize("data", [b"", b"junk", b"II*\x00" + b"\x00" * 20])
def test_what_does_not_decode_says_so(data: bytes) -> None:
    with pytest.raises(MediaError, match=r"x\.tif does not decode"):
        decode(data, what="x.tif")
