"""Real and generated aerial imagery for tests.

- `neon_files`: the NEON aerial images with Pascal VOC boxes that ship in the ``deepforest``
  wheel (a PNG crop of 2299x2472, an LZW GeoTIFF, ...), fetched at test time with
  ``pip download --no-deps`` into a cache folder, never committed. Without network it skips
  (fails in CI, `tests.helpers.require`).
- `geotiff`: a GeoTIFF (LZW, GeoKey tags) of any depth and band count written with Pillow, as
  GDAL writes them for 16-bit panchromatic or 4-band RGB+NIR imagery.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from tests.helpers import require

DEEPFOREST = "deepforest==2.1.0"
"""The wheel whose ``deepforest/data`` holds the NEON files (pinned: the box counts below)."""

NEON_VOC = {
    "OSBS_029": ("OSBS_029.tif", 61),
    "SOAP_061": ("SOAP_061.png", 37),
    "2019_YELL_2_541000_4977000_image_crop": ("2019_YELL_2_541000_4977000_image_crop.png", 279),
}
"""The VOC annotations used: stem -> (image file, boxes in its XML). The 2299x2472 crop (574
boxes, 15 MB) is left out to keep the tests small."""

NEON_CLASSES = ("Tree", "Alive", "Dead")
"""The class names in their XML files."""


def neon_files(cache: Path, dest: Path) -> Path:
    """Copies the `NEON_VOC` images and XML files into ``dest`` (a fresh folder) and returns it.

    The wheel is downloaded once into ``cache``.
    """
    wheel = _deepforest_wheel(cache)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {name for stem, (image, _) in NEON_VOC.items() for name in (image, f"{stem}.xml")}
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            name = member.rsplit("/", 1)[-1]
            if member.startswith("deepforest/data/") and name in wanted:
                (dest / name).write_bytes(archive.read(member))
    missing = wanted - {p.name for p in dest.iterdir()}
    assert not missing, f"{DEEPFOREST} no longer ships {sorted(missing)}"
    return dest


OTHER_AERIAL = {
    "AWPE Pigeon Lake 2020 DJI_0005.JPG": (1058, 997),
    "2019_YELL_2_528000_4978000_image_crop2.png": (2299, 2472),
}
"""More real aerial images of the wheel, beside the NEON VOC set: a DJI drone photograph of a
bird colony (another survey, another camera: a JPEG with EXIF) and the largest NEON crop (a 15 MB
PNG), by their ``(width, height)``."""


def deepforest_files(cache: Path, dest: Path, names: list[str]) -> list[Path]:
    """Copies the named files of the wheel's ``deepforest/data`` into ``dest``."""
    wheel = _deepforest_wheel(cache)
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in names:
            (dest / name).write_bytes(archive.read(f"deepforest/data/{name}"))
    return [dest / name for name in names]


def _deepforest_wheel(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("deepforest-*.whl"))
    if not found:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache)]
        done = subprocess.run(
            [*command, DEEPFOREST], capture_output=True, text=True, timeout=300, check=False
        )
        found = sorted(cache.glob("deepforest-*.whl"))
        if not found:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            require(f"the NEON test images: pip download {DEEPFOREST} failed ({last})")
    return found[-1]


def geotiff(image: np.ndarray) -> bytes:
    """LZW GeoTIFF bytes of ``image``: ``(h, w)`` uint16 or uint8, or ``(h, w, 4)`` uint8, with
    the GeoTIFF tags of a UTM image (pixel scale, tie point, GeoKey directory)."""
    from PIL import Image, TiffImagePlugin

    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[33550] = (0.1, 0.1, 0.0)  # ModelPixelScale
    tags.tagtype[33550] = 12
    tags[33922] = (0.0, 0.0, 0.0, 404000.0, 3285000.0, 0.0)  # ModelTiepoint
    tags.tagtype[33922] = 12
    tags[34735] = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32617)  # GeoKeys
    tags.tagtype[34735] = 3
    mode = "RGBA" if image.ndim == 3 else None
    buffer = io.BytesIO()
    Image.fromarray(image, mode).save(buffer, format="TIFF", compression="tiff_lzw", tiffinfo=tags)
    return buffer.getvalue()


def aerial_scene(height: int, width: int, *, seed: int = 0) -> tuple[np.ndarray, list[tuple]]:
    """A 12-bit panchromatic scene (values 300..3800 in uint16): bright square objects on dark
    ground that brightens from left to right, with a little sensor noise; returns it and the
    objects as normalised ``(cx, cy, w, h)``."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 500, width)[None, :]
    ground = (300 + ramp + rng.integers(0, 40, (height, width))).astype(np.int64)
    boxes = []
    for _ in range(4):
        side = int(rng.integers(8, 16))
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        ground[y : y + side, x : x + side] = 3000 + rng.integers(0, 800, (side, side))
        boxes.append(((x + side / 2) / width, (y + side / 2) / height, side / width, side / height))
    return ground.astype(np.uint16), boxes
