"""Synthetic aerial-like scenes with exact YOLO labels, for the demo, the tests and benchmarks.

Nothing is downloaded: scenes are drawn with OpenCV from a seeded generator. The ground is a
smooth noise texture whose palette follows the weather mode (green-brown for Norm, snowy for Wint,
dark for Night); objects are simple top-down shapes with a shadow, and each base class has its own
shape and colour so that a small model can learn to tell them apart.

Example:
    >>> scene = make_scene(np.random.default_rng(0), width=128, height=96)
    >>> scene.image.shape
    (96, 128, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from azaion_training.classes import WeatherMode
from azaion_training.errors import MediaError
from azaion_training.fs import AnnotationDir, atomic_write_bytes
from azaion_training.labels import Box, write_label

DEFAULT_CLASSES: tuple[int, ...] = (0, 1, 2, 15)
"""Base classes drawn by default: ArmorVehicle, Truck, Vehicle, Building."""

# Per base class: (colour BGR, relative length, relative width, shape). Sizes are fractions of
# the shorter image side.
_LOOKS: dict[int, tuple[tuple[int, int, int], float, float, str]] = {
    0: ((40, 80, 40), 0.16, 0.10, "tank"),  # ArmorVehicle: dark green hull with a turret
    1: ((30, 90, 150), 0.22, 0.08, "truck"),  # Truck: long, brown, with a cab
    2: ((200, 60, 50), 0.11, 0.06, "car"),  # Vehicle: small, blue
    3: ((60, 60, 60), 0.20, 0.05, "gun"),  # Artillery: long thin barrel
    15: ((150, 150, 150), 0.24, 0.20, "building"),  # Building: large grey block with a roof
}
_GROUND = {
    WeatherMode.NORM: ((60, 110, 90), (40, 80, 120)),
    WeatherMode.WINT: ((225, 225, 230), (190, 195, 200)),
    WeatherMode.NIGHT: ((40, 35, 30), (20, 20, 25)),
}


@dataclass(frozen=True)
class Scene:
    """One synthetic image (BGR, ``(h, w, 3)`` uint8) and its boxes."""

    image: np.ndarray
    boxes: list[Box]
    mode: WeatherMode


def make_ground(rng: np.random.Generator, width: int, height: int, mode: WeatherMode) -> np.ndarray:
    """A smooth, textured ground in the palette of ``mode``."""
    low = rng.random((max(height // 32, 2), max(width // 32, 2)), dtype=np.float32)
    smooth = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 0.06, (height, width)).astype(np.float32)
    mix = np.clip(smooth + grain, 0, 1)[..., None]
    first, second = (np.array(c, np.float32) for c in _GROUND[mode])
    return (first * mix + second * (1 - mix)).astype(np.uint8)


def make_scene(
    rng: np.random.Generator,
    *,
    width: int = 256,
    height: int = 256,
    objects: tuple[int, int] = (3, 8),
    classes: Sequence[int] = DEFAULT_CLASSES,
    mode: WeatherMode | None = None,
) -> Scene:
    """Draws a scene with between ``objects[0]`` and ``objects[1]`` objects of ``classes``.

    Args:
        rng: the generator; the same seed gives the same scene.
        mode: the weather mode (its offset is added to the class ids); random when ``None``.
    """
    mode = mode if mode is not None else WeatherMode(rng.choice([0, 0, 20, 40]))
    image = make_ground(rng, width, height, mode)
    boxes: list[Box] = []
    occupied: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
        base = int(rng.choice(list(classes)))
        placed = _place_object(rng, image, base, occupied)
        if placed is not None:
            x1, y1, x2, y2 = placed
            occupied.append(placed)
            boxes.append(
                Box.from_xyxy(base + mode.value, x1 / width, y1 / height, x2 / width, y2 / height)
            )
    if mode is WeatherMode.NIGHT:
        image = cv2.convertScaleAbs(image, alpha=0.6, beta=0)
    return Scene(image=image, boxes=boxes, mode=mode)


def write_annotations(
    folder: AnnotationDir,
    count: int,
    *,
    seed: int = 0,
    width: int = 256,
    height: int = 256,
    prefix: str = "synthetic",
    quality: int = 90,
    **scene_options: object,
) -> list[str]:
    """Writes ``count`` scenes as ``images/{prefix}_{i:06d}.jpg`` + ``labels/...txt``.

    Returns:
        The annotation names, in order.
    """
    rng = np.random.default_rng(seed)
    names = []
    for index in range(count):
        scene = make_scene(rng, width=width, height=height, **scene_options)  # type: ignore[arg-type]
        name = f"{prefix}_{index:06d}"
        atomic_write_bytes(folder.image_path(name, ".jpg"), encode_jpeg(scene.image, quality))
        write_label(folder.label_path(name), scene.boxes)
        names.append(name)
    return names


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MediaError("OpenCV could not encode a JPEG")
    return encoded.tobytes()


def write_video(
    path: Path,
    *,
    frames: int,
    width: int = 320,
    height: int = 240,
    fps: float = 25.0,
    seed: int = 0,
    classes: Sequence[int] = DEFAULT_CLASSES,
    mode: WeatherMode = WeatherMode.NORM,
) -> list[list[Box]]:
    """Writes an MP4 of a scene whose objects drift slowly; returns each frame's boxes."""
    rng = np.random.default_rng(seed)
    # Pan a larger canvas under a fixed camera: the boxes move with the ground.
    canvas = make_scene(
        rng, width=width * 2, height=height, classes=classes, mode=mode, objects=(6, 12)
    )
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise MediaError(f"OpenCV cannot write video {path}")
    truths = []
    try:
        for index in range(frames):
            shift = round(index * (width / max(frames, 1)))
            writer.write(np.ascontiguousarray(canvas.image[:, shift : shift + width]))
            truths.append(_visible_boxes(canvas.boxes, shift, width, canvas.image.shape[1]))
    finally:
        writer.release()
    return truths


def _visible_boxes(boxes: list[Box], shift: int, width: int, canvas_width: int) -> list[Box]:
    visible = []
    for box in boxes:
        x1, y1, x2, y2 = box.xyxy
        x1, x2 = (x1 * canvas_width - shift) / width, (x2 * canvas_width - shift) / width
        if x1 >= 0 and x2 <= 1:
            visible.append(Box.from_xyxy(box.class_id, x1, y1, x2, y2))
    return visible


def _place_object(
    rng: np.random.Generator,
    image: np.ndarray,
    base: int,
    occupied: list[tuple[int, int, int, int]],
) -> tuple[int, int, int, int] | None:
    height, width = image.shape[:2]
    colour, length, thickness, shape = _LOOKS.get(base, _LOOKS[2])
    side = min(width, height)
    scale = rng.uniform(0.8, 1.25)
    long_side, short_side = (
        max(int(length * side * scale), 4),
        max(int(thickness * side * scale), 3),
    )
    horizontal = bool(rng.integers(0, 2))
    w, h = (long_side, short_side) if horizontal else (short_side, long_side)
    for _ in range(20):
        x1 = int(rng.integers(2, max(width - w - 2, 3)))
        y1 = int(rng.integers(2, max(height - h - 2, 3)))
        candidate = (x1, y1, x1 + w, y1 + h)
        if all(not _overlaps(candidate, other) for other in occupied):
            _draw(image, candidate, colour, shape, horizontal, rng)
            return candidate
    return None


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    margin = 4
    return not (
        a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1]
    )


def _draw(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    shape: str,
    horizontal: bool,
    rng: np.random.Generator,
) -> None:
    x1, y1, x2, y2 = box
    shade = rng.integers(-20, 21)
    body = tuple(int(np.clip(c + shade, 0, 255)) for c in colour)
    dark = tuple(int(c * 0.55) for c in body)
    light = tuple(int(min(c * 1.4 + 30, 255)) for c in body)
    offset = max((x2 - x1) // 8, 2)
    overlay = image.copy()
    cv2.rectangle(overlay, (x1 + offset, y1 + offset), (x2 + offset, y2 + offset), (15, 15, 15), -1)
    cv2.addWeighted(overlay, 0.45, image, 0.55, 0, dst=image)  # the shadow
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), body, -1)
    cx, cy, w, h = (x1 + x2) // 2, (y1 + y2) // 2, x2 - x1, y2 - y1
    if shape == "tank":
        cv2.circle(image, (cx, cy), max(min(w, h) // 3, 2), dark, -1)
        end = (x2 - 1, cy) if horizontal else (cx, y1)
        cv2.line(image, (cx, cy), end, dark, max(min(w, h) // 8, 1))
    elif shape == "truck":
        cab = (x1, y1, x1 + w // 4, y2) if horizontal else (x1, y1, x2, y1 + h // 4)
        cv2.rectangle(image, cab[:2], (cab[2] - 1, cab[3] - 1), light, -1)
    elif shape == "car":
        inset = max(min(w, h) // 4, 1)
        cv2.rectangle(image, (x1 + inset, y1 + inset), (x2 - inset - 1, y2 - inset - 1), light, -1)
    elif shape == "gun":
        cv2.line(image, (x1, y1), (x2 - 1, y2 - 1), dark, max(min(w, h) // 3, 1))
    elif shape == "building":
        if horizontal:
            cv2.line(image, (x1, cy), (x2 - 1, cy), dark, max(h // 10, 1))
        else:
            cv2.line(image, (cx, y1), (cx, y2 - 1), dark, max(w // 10, 1))
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), dark, max(min(w, h) // 20, 1))
