"""The one table of image formats, and the one rule that turns any image into the model's input.

`FORMATS` says what each stage does with each format:

============  ============  ===========================================================
format        suffixes      stages
============  ============  ===========================================================
JPEG          .jpg .jpeg    queue, convert, augment, formation, visualise, stills
PNG           .png          queue, convert, augment, formation, visualise, stills
BMP           .bmp          queue, convert, augment, formation, visualise, stills
WebP          .webp         queue, convert, augment, formation, visualise, stills
TIFF/GeoTIFF  .tif .tiff    convert, augment, formation, visualise, stills (not the queue)
============  ============  ===========================================================

- **queue** (`azaion-queue`): the platform's allow-list (SPEC 5.4); a TIFF in a message is
  rejected with a reason. `azaion-convert --queue-ready` (and `azaion-demo --data`) writes TIFF
  sources as PNG, through `to_model_rgb`, so they can be sent.
- **convert**: copies every format as it is (or as PNG with ``queue_ready``) and says how many
  TIFF images it kept.
- **augment**: reads every format with `read_image`; the original sample keeps the source's
  bytes when the source already is the model's input (a queue format, 8-bit, 1 or 3 bands),
  else it is written as PNG from `to_model_rgb` (so training never sees 16-bit or 4-band
  files); the variants are JPEG.
- **formation** links what the augmenter wrote; **visualise**, inference on still frames and
  INT8 calibration read through `read_image`.

Headers are read without decoding (`azaion_training.imageheader`), so the pixel budget holds
for every format.

The conversion (`to_model_rgb`): decode (OpenCV; a TIFF with every band as stored, its libtiff
warnings about GeoTIFF tags kept off the console; other formats in their depth, by their EXIF
orientation, an alpha band dropped, as Ultralytics reads them), choose the bands
(`ToRGB.bands`, 1-based in file order; by default 1 band -> grey, 3 -> R,G,B, 4 -> the first
three, R,G,B of an RGBA or RGB+NIR image), and bring them to 8 bits: 8-bit images as they are;
other depths by a percentile stretch over the chosen bands together (`ToRGB.percentiles`,
default 2-98, so one hot pixel does not darken the image and colours keep their ratios), or by a
fixed range (`ToRGB.fixed_range`, e.g. ``(0, 4095)`` for 12-bit sensors) when set.

Example:
    >>> import numpy as np
    >>> grey16 = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096)
    >>> rgb = to_model_rgb(grey16, ToRGB())
    >>> rgb.shape, rgb.dtype.name, int(rgb.min()), int(rgb.max())
    ((64, 64, 3), 'uint8', 0, 255)
    >>> format_of(Path("a/OSBS_029.TIF")).name, format_of(Path("x.gif"))
    ('TIFF', None)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from azaion_training.errors import MediaError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageFormat:
    """One row of `FORMATS`.

    Attributes:
        name: the format's name in messages (``TIFF``).
        suffixes: its file endings, lower case with the dot.
        queue: accepted in a queue message (the platform's allow-list, SPEC 5.4).
        header: Pillow's name of the format, whose header `imageheader` reads.
    """

    name: str
    suffixes: tuple[str, ...]
    queue: bool
    header: str


FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("JPEG", (".jpg", ".jpeg"), queue=True, header="JPEG"),
    ImageFormat("PNG", (".png",), queue=True, header="PNG"),
    ImageFormat("BMP", (".bmp",), queue=True, header="BMP"),
    ImageFormat("WebP", (".webp",), queue=True, header="WEBP"),
    ImageFormat("TIFF", (".tif", ".tiff"), queue=False, header="TIFF"),
)
"""Every image format the toolkit reads, and where each is accepted."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(s for f in FORMATS for s in f.suffixes)
"""File endings read as images (compared in lower case)."""

QUEUE_SUFFIXES: tuple[str, ...] = tuple(s for f in FORMATS if f.queue for s in f.suffixes)
"""Image extensions accepted from the queue (lower case)."""

SUFFIX_SPELLINGS: tuple[str, ...] = tuple(
    dict.fromkeys(v for f in FORMATS for s in f.suffixes for v in (s, s.upper()))
)
"""Every ending an image file may have, in lower and upper case, in table order: where one
annotation's image is looked up by trying names (a folder of millions is never listed)."""

MODEL_INPUT_SUFFIX = ".png"
"""Where an image is rewritten as the model's input (a TIFF for the queue, a 16-bit original
sample), it is written losslessly as PNG."""


def sample_suffix(suffix: str) -> str:
    """The ending of the original sample the augmenter writes for a source with ``suffix``:
    the same for a queue format, else `MODEL_INPUT_SUFFIX` (a TIFF's sample is a PNG)."""
    found = format_of(f"x{suffix}")
    return suffix if found is not None and found.queue else MODEL_INPUT_SUFFIX


def format_of(path: Path | str) -> ImageFormat | None:
    """The format of a file by its ending (any case), or ``None`` when it is not an image."""
    suffix = Path(path).suffix.lower()
    return next((f for f in FORMATS if suffix in f.suffixes), None)


@dataclass(frozen=True)
class ToRGB:
    """How an image becomes the model's 8-bit 3-channel input (the ``images`` settings).

    Attributes:
        bands: 1-based band numbers for red, green, blue, in the file's order (one number:
            grey); ``None``: 1 band -> grey, 3 or more -> bands 1, 2, 3.
        percentiles: the low and high percentile mapped to 0 and 255 for images that are not
            8-bit (over the chosen bands together).
        fixed_range: a fixed ``(low, high)`` mapped to 0 and 255 instead of the percentiles.
    """

    bands: tuple[int, ...] | None = None
    percentiles: tuple[float, float] = (2.0, 98.0)
    fixed_range: tuple[float, float] | None = None


def read_image(path: Path, rule: ToRGB | None = None) -> np.ndarray:
    """The image at ``path`` as the model's input: an RGB ``(h, w, 3)`` uint8 array.

    Raises:
        MediaError: the file does not decode, or ``rule`` names a band it does not have.
        OSError: the file cannot be read.
    """
    return to_model_rgb(decode(Path(path).read_bytes(), what=str(path)), rule or ToRGB())


def decode(data: bytes, *, what: str = "image") -> np.ndarray:
    """Every band of an encoded image as stored: ``(h, w)`` or ``(h, w, bands)`` in the file's
    band order (RGB, not OpenCV's BGR), in its own depth (uint8, uint16, float32, ...).

    Raises:
        MediaError: the bytes do not decode.
    """
    import cv2

    if data[:4] in _TIFF_MAGIC:
        image = _decode_tiff(data, what=what)
        if image is not None:
            return image
    # Other formats keep their depth and grey/colour, lose an alpha band, and turn by their EXIF
    # orientation, as Ultralytics' own reader (cv2.imread) turns them. A TIFF that Pillow does
    # not read exactly gets every band as stored.
    flags = cv2.IMREAD_UNCHANGED if data[:4] in _TIFF_MAGIC else _COLOUR_FLAGS()
    image = None
    if data:
        with _quiet_opencv():
            try:
                image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
            except cv2.error as exc:
                logger.debug("%s: OpenCV: %s", what, exc)
    if image is None or image.size == 0:
        raise MediaError(f"{what} does not decode")
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] >= 3:  # OpenCV's BGR(A) back to the file's order
        order = [2, 1, 0, *range(3, image.shape[2])]
        return image[:, :, order]
    return image


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_PILLOW_EXACT = {"L": 8, "RGB": 8, "RGBA": 8, "I;16": 16, "I;16B": 16, "F": 32}
"""Pillow modes whose TIFF decode is exact, with their bits per sample. Pillow reads these
without libtiff's warnings, and keeps an RGBA image's colours as stored, where OpenCV's RGBA
path premultiplies them by the alpha band."""


def _COLOUR_FLAGS() -> int:
    import cv2

    return cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def _decode_tiff(data: bytes, *, what: str) -> np.ndarray | None:
    """A TIFF through Pillow when its mode is one Pillow decodes exactly (every band, its
    depth), else ``None`` (OpenCV takes it: 16-bit colour, RGB plus extra bands).

    Raises:
        MediaError: the TIFF is broken.
    """
    import io
    import warnings

    from PIL import TiffImagePlugin

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with TiffImagePlugin.TiffImageFile(io.BytesIO(data)) as tiff:
                bits = tiff.tag_v2.get(258, (1,))
                bits = bits if isinstance(bits, tuple) else (bits,)
                samples = int(tiff.tag_v2.get(277, 1))
                exact = _PILLOW_EXACT.get(tiff.mode)
                if exact is None or set(bits) != {exact} or samples != len(tiff.getbands()):
                    return None
                tiff.load()
                image = np.asarray(tiff)
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError) as exc:
        logger.debug("%s: Pillow: %s", what, exc)
        return None
    return image.astype(np.uint16) if image.dtype.byteorder == ">" else image


def is_model_input(image: np.ndarray) -> bool:
    """True when a decoded image needs no conversion: 8-bit, 1 or 3 bands."""
    return image.dtype == np.uint8 and (image.ndim == 2 or image.shape[2] == 3)


def to_model_rgb(image: np.ndarray, rule: ToRGB) -> np.ndarray:
    """A decoded image (see `decode`) as an RGB ``(h, w, 3)`` uint8 array, by ``rule``.

    Raises:
        MediaError: ``rule.bands`` names a band the image does not have.
    """
    planes = _bands(image, rule.bands)
    if planes.dtype != np.uint8:
        planes = _stretch(planes, rule)
    if planes.shape[2] == 1:
        planes = np.repeat(planes, 3, axis=2)
    return np.ascontiguousarray(planes)


def to_bgr(image: np.ndarray, rule: ToRGB) -> np.ndarray:
    """`to_model_rgb` in OpenCV's channel order (for the augmenter and video frames)."""
    return np.ascontiguousarray(to_model_rgb(image, rule)[:, :, ::-1])


def encode_png(rgb: np.ndarray) -> bytes:
    """Lossless PNG bytes of an RGB uint8 image.

    Raises:
        MediaError: OpenCV could not encode it.
    """
    import cv2

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise MediaError("OpenCV could not encode a PNG")
    return encoded.tobytes()


def _bands(image: np.ndarray, bands: tuple[int, ...] | None) -> np.ndarray:
    planes = image[:, :, None] if image.ndim == 2 else image
    count = planes.shape[2]
    if bands is None:
        chosen: tuple[int, ...] = (1,) if count < 3 else (1, 2, 3)
    else:
        chosen = bands
    missing = [band for band in chosen if not 1 <= band <= count]
    if missing:
        raise MediaError(
            f"the image has {count} band(s); images.bands asks for band {missing[0]} "
            f"(set images.bands to at most {count})"
        )
    return planes[:, :, [band - 1 for band in chosen]]


def _stretch(planes: np.ndarray, rule: ToRGB) -> np.ndarray:
    values = planes.astype(np.float32)
    if rule.fixed_range is not None:
        low, high = rule.fixed_range
    else:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return np.zeros(planes.shape, np.uint8)
        low, high = (float(v) for v in np.percentile(finite, rule.percentiles))
    scale = 255.0 / (high - low) if high > low else 0.0
    stretched = np.nan_to_num((values - low) * scale, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(stretched), 0, 255).astype(np.uint8)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's own warnings (libtiff's "Unknown field with tag ..." for every GeoTIFF tag) off
    the console for one call; the level is restored after it."""
    import cv2

    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)
